"""Keeping secrets out of output: one rule, :func:`mask_url`, for every URL, DSN, header and message that leaves
the program (logs, errors, ``/metrics``, report and run files, the history, manifests, ``check-config``, the
terminal). docs/configuration.md ("Secrets in output") states the rule for users.

A masked value becomes ``<secret>``; what it was for stays readable:

- the password of ``scheme://user:password@host``, whatever the scheme and its case. The user name stays, as Go's
  ``url.URL.Redacted`` keeps it. The password runs to the last ``@`` before the host, so it may hold ``@`` and
  ``:``; a ``/``, ``?``, ``#``, ``"`` or a space in it must be percent-encoded, as clients require anyway;
- the value of a query parameter (``?token=...``), a ``key=value`` pair (libpq's ``password=...``), a quoted
  ``'key': 'value'`` entry or a header line (``X-Api-Key: ...``) whose name is a credential's
  (:func:`is_secret_name`);
- the credentials of an ``Authorization`` header (``Authorization: Basic <secret>``) and a ``Bearer`` token anywhere.
"""

from __future__ import annotations

import re

MASK = "<secret>"

# A name is a credential's when it holds one of these (any case): password, db_pass, api_key, X-Auth-Token, sslkey,
# sig, X-Amz-Signature, Authorization... but not passenger, keyspace, signal or author.
SECRET_NAME_PARTS = (r"passw", r"passphrase", r"pass(?![a-z])", r"pwd", r"secret", r"token", r"key(?![a-z])",
                     r"sig(?![a-z])", r"signature", r"auth(?!or(?!i[sz]ation))", r"credential", r"session",
                     r"cookie", r"jwt")
AUTH_SCHEMES = ("bearer", "basic", "digest", "negotiate", "token", "apikey")

_PARTS = "|".join(SECRET_NAME_PARTS)
_SECRET_NAME = re.compile(_PARTS, re.IGNORECASE)
_SCHEME = rf"(?:(?:{'|'.join(AUTH_SCHEMES)})[ \t]+)?"
# Placeholders, not values: a SQL parameter ($1, ?), and what a mask or a redaction left ('<redacted>', <secret>).
_PLACEHOLDER = re.compile(r"\$\d+|\?|'?<(?:secret|redacted)>'?")

_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]{0,31}://)([^\s/?#\"]*)@", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"([?&])([^\s=&#?\"]+)=([^\s&#\"]*)")
# libpq's key=value (and logfmt): after a space, a bracket or a quote, so that a query's pairs are left to the above
_KEY_VALUE = re.compile(rf"(?<![^\s(,;{{\['\"])([A-Za-z_][\w.-]*)([ \t]*=[ \t]*)({_SCHEME})"
                        r"('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|\S+)", re.IGNORECASE)
# 'name': 'value' (a Python or JSON mapping's entry)
_QUOTED_ENTRY = re.compile(rf"(['\"])([\w.-]+)\1([ \t]*:[ \t]*)(['\"])({_SCHEME})((?:(?!\4)[^\\]|\\.)*)\4?",
                           re.IGNORECASE)
# A credential's header line: Authorization, Cookie, or a hyphenated name (X-Api-Key) with a secret part; the value
# runs to the line's end.
_HEADER = re.compile(rf"(?<![\w-])((?=[\w-]*?(?:{_PARTS}))(?:authorization|cookie|[a-z]\w*(?:-\w+)+))"
                     rf"([ \t]*:[ \t]*)({_SCHEME})([^\r\n]*)", re.IGNORECASE)
_SCHEME_PREFIX = re.compile(_SCHEME, re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer[ \t]+)([A-Za-z0-9._~+/-]+=*)", re.IGNORECASE)


class MaskedError(Exception):
    """An error whose message went through :func:`mask_url`: whoever prints it prints no secret."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_url(arg) if isinstance(arg, str) else arg for arg in args))


def is_secret_name(name: str) -> bool:
    """Whether a parameter, key or header of this name holds a credential (:data:`SECRET_NAME_PARTS`)."""
    return _SECRET_NAME.search(name) is not None


def mask_url(text: str) -> str:
    """``text`` with every secret it holds replaced by :data:`MASK`: the one masking rule (see the module)."""
    text = _USERINFO.sub(_hide_password, text)  # first: a URL after "Bearer " is still a URL
    text = _QUERY_PAIR.sub(_hide_pair, text)
    text = _HEADER.sub(_hide_header, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _KEY_VALUE.sub(_hide_key_value, text)
    return _QUOTED_ENTRY.sub(_hide_quoted_entry, text)


def holds_secret(name: str, value: str) -> bool:
    """Whether a variable or field ``name`` set to ``value`` carries a credential: its name is a credential's, or
    the rule masks something in its value."""
    return is_secret_name(name) or mask_url(value) != value


def mask_header(name: str, value: str) -> str:
    """A header's value as it may be shown: a credential header's (:func:`is_secret_name`) masked whole, its scheme
    kept (``Bearer <secret>``); any other's through :func:`mask_url`."""
    if not is_secret_name(name):
        return mask_url(value)
    scheme = _SCHEME_PREFIX.match(value)
    return f"{scheme.group(0) if scheme else ''}{MASK}"


def safe_url(url: str) -> str:
    """A URL as it may appear in labels: no userinfo, no query string, no fragment."""
    without_user = _USERINFO.sub(lambda m: m.group(1), url, count=1)
    return re.split(r"[?#]", without_user, maxsplit=1)[0]


def _hides_something(value: str) -> bool:
    """Whether masking ``value`` hides anything: not when it is empty or a placeholder."""
    return bool(value) and _PLACEHOLDER.fullmatch(value) is None


def _hide_header(match: re.Match[str]) -> str:
    name, sep, scheme, value = match.groups()
    return f"{name}{sep}{scheme}{MASK}" if _hides_something(value.strip()) else match.group(0)


def _hide_password(match: re.Match[str]) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    user, _, password = userinfo.partition(":")
    return f"{scheme}{user}:{MASK}@" if password not in ("", MASK) else match.group(0)


def _hide_pair(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    return f"{sep}{name}={MASK}" if is_secret_name(name) and _hides_something(value) else match.group(0)


def _hide_key_value(match: re.Match[str]) -> str:
    name, sep, scheme, value = match.groups()
    return f"{name}{sep}{scheme}{MASK}" if is_secret_name(name) and _hides_something(value) else match.group(0)


def _hide_quoted_entry(match: re.Match[str]) -> str:
    quote, name, sep, value_quote, scheme, value = match.groups()
    if not is_secret_name(name) or not _hides_something(value):
        return match.group(0)
    return f"{quote}{name}{quote}{sep}{value_quote}{scheme}{MASK}{value_quote}"
