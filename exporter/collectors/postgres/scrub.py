"""Statement texts without their secrets, before they become labels.

pg_stat_statements replaces the constants of planned statements (SELECT, INSERT, ...) by ``$1``, ``$2``, but keeps
utility statements as they were sent: ``ALTER ROLE app PASSWORD 'hunter2'``, ``CREATE SUBSCRIPTION s CONNECTION
'host=... password=...'``, ``CREATE USER MAPPING ... OPTIONS (password '...')``, ``CREATE SERVER ... OPTIONS``,
``COPY ... PROGRAM 'curl -H ...'``, a ``DO`` block or a function body quoted in dollars. Every string literal of a
statement text is replaced (a normalised statement has none left, so nothing of value is lost), with a small
lexer of PostgreSQL's quoting rules rather than a regular expression: ``''`` inside a literal, backslash escapes
in ``E'...'``, ``$tag$...$tag$``, double-quoted identifiers and comments, and a literal cut off by truncation.
"""

from __future__ import annotations

import re

from exporter.secrets import mask_url

LITERAL = "'<redacted>'"

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")
# prefixes of a quoted string: E'..' (escapes), B'..' X'..' (bit strings), N'..' (national), U&'..' (unicode)
_STRING_PREFIX = re.compile(r"[EeBbXxNn]|[Uu]&")


def scrub_statement(text: str) -> str:
    """``text`` with every string literal (quoted or dollar-quoted) replaced by ``'<redacted>'``, and any
    ``scheme://user:password@`` or ``password=...`` left outside literals (in a comment, say) masked."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(text[i:end])
            i = end
        elif c == "/" and text.startswith("/*", i):
            end = _comment_end(text, i)
            out.append(text[i:end])
            i = end
        elif c == '"':
            end = _quoted_end(text, i, '"', backslash=False)
            out.append(text[i:end])
            i = end
        elif c == "'":
            prefix = _string_prefix(text, i)
            del out[len(out) - len(prefix):]  # the prefix letters went out one character each
            out.append(LITERAL)
            i = _quoted_end(text, i, "'", backslash=prefix in ("E", "e"))
        elif c == "$" and not (i > 0 and _IDENT_CHAR.match(text[i - 1])):
            tag = _DOLLAR_TAG.match(text, i)
            if tag is None:  # $1, a parameter
                out.append(c)
                i += 1
                continue
            close = text.find(tag.group(0), tag.end())
            out.append(LITERAL)
            i = n if close < 0 else close + len(tag.group(0))
        else:
            out.append(c)
            i += 1
    return mask_url("".join(out))


def _quoted_end(text: str, start: int, quote: str, backslash: bool) -> int:
    """The index after the quoted token opened at ``start`` (the text's end if it is cut off)."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote:
            if i + 1 < n and text[i + 1] == quote:  # '' or "" inside: one quote character
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _comment_end(text: str, start: int) -> int:
    """The index after the (nesting) block comment opened at ``start``."""
    depth, i, n = 0, start, len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _string_prefix(text: str, quote: int) -> str:
    """The letters that open the string literal whose quote is at ``quote`` (``E``, ``U&``...), if any: they
    must stand alone, not end a word."""
    for size in (2, 1):
        start = quote - size
        if start >= 0 and _STRING_PREFIX.fullmatch(text[start:quote]) and (
                start == 0 or not _IDENT_CHAR.match(text[start - 1])):
            return text[start:quote]
    return ""
