"""What the security checks send and how they judge what came back: pure functions on plain data, so that each
verdict is tested both ways without a server (exporter.probes.security does the I/O).

A verdict is ``(held, cause)``: the cause says what was answered when the check does not hold, including when
the check could not tell (a request it needs to succeed did not), which is no pass either.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Verdict = tuple[bool, str]
HELD: Verdict = (True, "")


def _answered(status: int | None) -> str:
    return "no answer" if status is None else f"HTTP {status}"


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


# ---------------------------------------------------------------------------------------------------------------
# unauthenticated, lower_role


def verdict_status(status: int | None, expected: int) -> Verdict:
    if status == expected:
        return HELD
    return False, f"expected HTTP {expected}, got {_answered(status)}"


# ---------------------------------------------------------------------------------------------------------------
# rate_limit, anonymous_rate_limit


def verdict_rate_limit(statuses: Sequence[int | None], expected: int, seconds: float, window: float) -> Verdict:
    """At least one ``expected`` among the burst's answers and no 5xx. Without one, a burst that took longer than
    its window proves nothing (a busy server may take it too slowly to reach its limit): it fails as that."""
    server_errors = sorted({s for s in statuses if s is not None and s >= 500})
    if server_errors:
        return False, f"the burst got HTTP {', '.join(map(str, server_errors))}"
    if expected in statuses:
        return HELD
    if seconds > window:
        return False, (f"no HTTP {expected} in a burst of {len(statuses)} that took {seconds:.2f}s, longer than "
                       f"its window ({window:g}s): the check cannot tell")
    answered = sorted({str(s) for s in statuses if s is not None})
    return False, (f"no HTTP {expected} in a burst of {len(statuses)} within {window:g}s "
                   f"(answers: {', '.join(answered) or 'none'})")


# ---------------------------------------------------------------------------------------------------------------
# token_tampering


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = [json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]]
    except (ValueError, binascii.Error):
        return None
    header, claims = decoded
    return (header, claims) if isinstance(header, dict) and isinstance(claims, dict) else None


def _other_char(char: str) -> str:
    return "B" if char == "A" else "A"


def tampered_tokens(token: str) -> list[tuple[str, str]]:
    """(what was done, the token): its signature changed and, for a JWT, an unsigned one (``alg: none``) and one
    with its claims changed under the old signature. The signature's first character is changed, not its last:
    the last one of base64 may carry only padding bits, and a server that decodes it would rightly see no change."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[2]:
        middle = len(token) // 2
        return [("a changed token", token[:middle] + _other_char(token[middle:middle + 1]) + token[middle + 1:])]
    header_b64, claims_b64, signature = parts
    out = [("a token with its signature changed",
            f"{header_b64}.{claims_b64}.{_other_char(signature[0])}{signature[1:]}")]
    decoded = _jwt_parts(token)
    if decoded is not None:
        header, claims = decoded
        unsigned = _b64(json.dumps({**header, "alg": "none"}, separators=(",", ":")).encode())
        out.append(("an unsigned token (alg none)", f"{unsigned}.{claims_b64}."))
        changed = {**claims, "exp": int(claims["exp"]) + 365 * 86400} if isinstance(claims.get("exp"), int) else {
            **claims, "perf_exporter": "tampered"}
        out.append(("a token with its claims changed",
                    f"{header_b64}.{_b64(json.dumps(changed, separators=(',', ':')).encode())}.{signature}"))
    return out


def verdict_token_tampering(valid: int | None, tampered: Sequence[tuple[str, int | None]], expected: int) -> Verdict:
    """The valid token let in (else the check cannot tell a refused forgery from a refused token), and each
    tampered or expired one answered ``expected``."""
    if valid is None or valid == expected or valid >= 500:
        return False, (f"the valid token got {_answered(valid)}: the check cannot tell whether forged tokens "
                       f"are refused")
    for what, status in tampered:
        if status != expected:
            return False, f"{what} got {_answered(status)}, expected HTTP {expected}"
    return HELD


# ---------------------------------------------------------------------------------------------------------------
# object_authorization


@dataclass(frozen=True)
class ObjectAttempt:
    request: str  # "GET /api/v1/orders/{order_id}": as configured, so that the cause reads alike every run
    status: int | None


def verdict_object_authorization(created: int | None, capture_problem: str | None,
                                 attempts: Sequence[ObjectAttempt], owner_read: int | None) -> Verdict:
    """User A's attempts on user B's new object each answered 403 or 404, and B can read it (else a 404 proves
    nothing)."""
    if not _ok(created) or capture_problem is not None:
        return False, f"the owner could not create the object ({capture_problem or _answered(created)})"
    for attempt in attempts:
        if attempt.status not in (403, 404):
            return False, (f"another user got {_answered(attempt.status)} for {attempt.request} of the owner's "
                           f"new object, expected HTTP 403 or 404")
    if not _ok(owner_read):
        return False, (f"the owner got {_answered(owner_read)} for its own object: the check cannot tell whether "
                       f"others are kept out")
    return HELD


# ---------------------------------------------------------------------------------------------------------------
# injection


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: bytes = b""
    seconds: float = 0.0
    content_type: str = ""


# A quote that ends the string, a double quote, a closing parenthesis: each breaks the statement it is pasted into.
ERROR_SUFFIXES = ("'", '"', "')")
# A true and a false condition, in a string, after a comment, in parentheses and in a number.
BOOLEAN_PAIRS = (
    ("{v}' AND '1'='1", "{v}' AND '1'='2"),
    ("{v}' AND 1=1-- ", "{v}' AND 1=2-- "),
    ("{v}') AND ('1'='1", "{v}') AND ('1'='2"),
    ("{v} AND 1=1", "{v} AND 1=2"),
)
# PostgreSQL's pg_sleep in a string concatenation, a condition, a stacked statement and a number.
SLEEP_SHAPES = (
    "{v}'||(SELECT '' FROM pg_sleep({s}))||'",
    "{v}' AND 1=(SELECT 1 FROM pg_sleep({s}))-- ",
    "{v}'; SELECT pg_sleep({s})-- ",
    "{v} AND 1=(SELECT 1 FROM pg_sleep({s}))",
)
DATABASE_ERRORS = re.compile(
    r"syntax error at or near|unterminated quoted (string|identifier)|SQLSTATE|psycopg|PG::|pg_query\(|"
    r"You have an error in your SQL syntax|ORA-\d{5}|SQLite3?::|sqlite3\.OperationalError|"
    r"Unclosed quotation mark|quoted string not properly terminated|invalid input syntax for", re.IGNORECASE)


def error_payloads(value: str) -> list[str]:
    return [value + suffix for suffix in ERROR_SUFFIXES]


def boolean_payloads(value: str) -> list[tuple[str, str]]:
    return [(true.format(v=value), false.format(v=value)) for true, false in BOOLEAN_PAIRS]


def sleep_payload(shape: str, value: str, seconds: float) -> str:
    return shape.format(v=value, s=f"{seconds:g}")


def error_finding(baseline: Answer, payload: str, answer: Answer) -> str | None:
    """Error-based: where the harmless value got a 2xx, the payload got a 5xx or a database error's text."""
    if not _ok(baseline.status):
        return None
    text, before = answer.body.decode("utf-8", "replace"), baseline.body.decode("utf-8", "replace")
    leaked = DATABASE_ERRORS.search(text)
    if answer.status is not None and answer.status >= 500:
        return f"error-based: {payload!r} got HTTP {answer.status} where the harmless value got {baseline.status}"
    if leaked and not DATABASE_ERRORS.search(before):
        return (f"error-based: {payload!r} got a database error ({leaked.group(0)!r}, HTTP {answer.status}) where "
                f"the harmless value got none")
    return None


def answer_shape(answer: Answer, sent: Sequence[str]) -> str:
    """What an answer says, without what varies between two equal requests: its status, and the structure of its
    JSON (keys, types, empty lists or not) or its text without what was sent and with numbers blurred."""
    try:
        document = json.loads(answer.body) if answer.body else None
    except ValueError:
        text = answer.body.decode("utf-8", "replace")
        for value in sent:
            for form in (value, html.escape(value), json.dumps(value)[1:-1]):
                text = text.replace(form, "")
        return f"{answer.status}:text:{re.sub(r'[0-9]+', '0', text)}"
    return f"{answer.status}:json:{json.dumps(_structure(document), sort_keys=True)}"


def _structure(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _structure(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_structure(node[0])] if node else []
    return type(node).__name__


def boolean_finding(baselines: Sequence[str], true: str, false: str, pair: tuple[str, str]) -> str | None:
    """Boolean-based: the true condition answered as the harmless value does, the false one differently, while
    two harmless requests answer alike (else the difference says nothing)."""
    if len(set(baselines)) != 1 or true != baselines[0] or false == true:
        return None
    return f"boolean-based: {pair[0]!r} and {pair[1]!r} were answered differently"


def time_finding(baseline_seconds: Sequence[float], first: float, control: float, second: float, sleep: float,
                 payload: str) -> str | None:
    """Time-based: the sleep payload slowed the answer by most of its sleep (a margin of 20 % for the noise of a
    busy server) over the slowest harmless one, and did so again against the same shape with a sleep of 0."""
    margin = 0.8 * sleep
    if first - max(baseline_seconds, default=0.0) >= margin and second - control >= margin:
        return f"time-based: {payload!r} slowed the answer by its sleep ({sleep:g}s), twice"
    return None


def verdict_injection(baseline: Answer, findings: Sequence[str]) -> Verdict:
    if not _ok(baseline.status):
        return False, (f"the harmless value got {_answered(baseline.status)}: the check needs a request the "
                       f"endpoint accepts")
    if findings:
        return False, findings[0]
    return HELD


# ---------------------------------------------------------------------------------------------------------------
# xss


def xss_markers(nonce: str) -> list[str]:
    """An element, and the same after a double and a single quote that end an attribute: each carries the tag
    ``<perfxss<nonce>``, which a page can only show unescaped if it writes what it was sent as markup."""
    tag = f"<perfxss{nonce}>"
    return [tag, f'">{tag}', f"'>{tag}"]


def renders_html(content_type: str) -> bool:
    """Whether a browser would render the answer as a page: HTML, XHTML, SVG, or no type at all (it sniffs)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("", "text/html", "application/xhtml+xml", "image/svg+xml")


def verdict_xss(nonce: str, answers: Sequence[tuple[str, Answer]]) -> Verdict:
    """The marker's tag never comes back as markup in an answer a browser renders."""
    tag = f"<perfxss{nonce}".encode()
    for where, answer in answers:
        if tag in answer.body and renders_html(answer.content_type):
            return False, (f"{where}: the marker came back unescaped in a page rendered as HTML "
                           f"({answer.content_type or 'no content type'}, {_answered(answer.status)})")
    return HELD


# ---------------------------------------------------------------------------------------------------------------
# csrf


def verdict_csrf(login: int | None, cookies: int, with_cookie: int | None, forged: int | None) -> Verdict:
    """The login set a cookie that lets its holder in, and the state change sent with it alone (no CSRF token,
    from a foreign origin) was refused with a 4xx other than 404 and 405, which say the request is wrong."""
    if login is None or login >= 400 or cookies == 0:
        return False, f"the login got {_answered(login)} and set {cookies} cookies: the check needs a session"
    if not _ok(with_cookie):
        return False, (f"the endpoint got {_answered(with_cookie)} with the session cookie alone: the check "
                       f"cannot tell whether a forged request would be refused")
    if forged is None or forged >= 500:
        return False, f"the state change without a CSRF token got {_answered(forged)}"
    if forged in (404, 405):
        return False, f"the state change got HTTP {forged}: check its method and path"
    if forged < 400:
        return False, f"the state change without a CSRF token, from a foreign origin, was accepted (HTTP {forged})"
    return HELD
