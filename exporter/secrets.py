"""Keeping secrets out of output: every log line and error message passes through :func:`mask_url`."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "<secret>"

_URL_WITH_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/@\s]*)@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def mask_url(text: str) -> str:
    """Hide passwords of ``scheme://user:password@host`` anywhere in ``text``, and libpq ``password=...``."""

    def hide(match: re.Match[str]) -> str:
        scheme, userinfo = match.group(1), match.group(2)
        if ":" in userinfo:
            return f"{scheme}{userinfo.split(':', 1)[0]}:{MASK}@"
        return f"{scheme}{userinfo}@" if userinfo else match.group(0)

    text = _URL_WITH_USERINFO.sub(hide, text)
    return _KEYWORD_PASSWORD.sub(rf"\g<1>{MASK}", text)


def safe_url(url: str) -> str:
    """A URL as it may appear in logs and labels: no userinfo, no query string."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
