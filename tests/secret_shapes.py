"""Drawn secrets and the shapes they travel in, for the masking tests (tests/test_fuzz_masking.py and the commands'
outputs in tests/test_secrets_canary.py).

Every secret holds :data:`MARKER`, which no other drawn text holds, so finding a secret in an output is never a
coincidence. Each shape has the characters it can carry: a URL's password may hold ``@`` and ``:`` (but not
``/?#``, which must be percent-encoded), a query token no ``&``, a Bearer token the token68 characters, a libpq
value in quotes spaces and escaped quotes."""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass

from hypothesis import strategies as st

MARKER = "Zq7"
# what no drawn text other than a secret holds
_PLAIN = "".join(c for c in string.printable if c not in "Z\x0b\x0c")
PASSWORD_CHARS = "".join(c for c in string.printable if c not in string.whitespace + "/?#\"'\\")
QUERY_CHARS = "".join(c for c in PASSWORD_CHARS if c not in "&")
TOKEN68_CHARS = string.ascii_letters + string.digits + "-._~+/"
# characters the clients (httpx, psycopg, redis-py) take in a URL's password as they are: what the commands run with
CLIENT_PASSWORD_CHARS = string.ascii_letters + string.digits + "-._~!$&()*+,;=@"

SCHEMES = ("http", "https", "redis", "rediss", "postgres", "postgresql", "amqp", "mongodb+srv")
QUERY_NAMES = ("token", "access_token", "refresh_token", "id_token", "password", "api_key", "apikey", "key", "sig",
               "signature", "X-Amz-Signature", "client_secret", "auth", "sessionid", "jwt")


@dataclass(frozen=True)
class Shaped:
    """A text holding secrets: what must not show, and what must still show after masking."""

    text: str
    hidden: tuple[str, ...]
    kept: tuple[str, ...] = ()


def secrets(alphabet: str = PASSWORD_CHARS) -> st.SearchStrategy[str]:
    return st.builds(lambda a, b: a + MARKER + b, st.text(alphabet, max_size=6), st.text(alphabet, min_size=2,
                                                                                         max_size=16))


def any_case(word: str) -> st.SearchStrategy[str]:
    """``word`` in any mix of upper and lower case: ``POSTGRESQL``, ``Https``, ``bEaReR``."""
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(word, upper, strict=True)))


hosts = st.sampled_from(["db", "cache.internal", "127.0.0.1", "gateway.tripo04os.com", "[::1]"])
users = st.text(string.ascii_lowercase + string.digits + "_-.", max_size=8)


@st.composite
def url_with_password(draw: st.DrawFn, alphabet: str = PASSWORD_CHARS) -> Shaped:
    """``scheme://user:password@host[:port][/path][?query]``, the scheme in any case, the password with an ``@``
    before the marker half of the time (a reading that stops at the first ``@`` would show the marker)."""
    secret = draw(secrets(alphabet))
    if draw(st.booleans()):
        secret = f"{draw(st.text(alphabet, max_size=4))}@{secret}"
    scheme = draw(st.sampled_from(SCHEMES).flatmap(any_case))
    user, host = draw(users), draw(hosts)
    port = draw(st.sampled_from(["", ":5432", ":6379", ":8020"]))
    rest = draw(st.sampled_from(["", "/", "/0", "/tripo", "/api/v1?region=eu", "/db?sslmode=require"]))
    return Shaped(f"{scheme}://{user}:{secret}@{host}{port}{rest}", (secret,), (f"{scheme}://{user}:", host))


@st.composite
def query_token(draw: st.DrawFn) -> Shaped:
    secret = draw(secrets(QUERY_CHARS))
    name = draw(st.sampled_from(QUERY_NAMES))
    before = draw(st.sampled_from(["", "region=eu&", "a=1&b=2&"]))
    after = draw(st.sampled_from(["", "&page=2", "#top"]))
    scheme = draw(any_case("https"))
    return Shaped(f"{scheme}://api.example.com/v1/orders?{before}{name}={secret}{after}", (secret,),
                  ("api.example.com/v1/orders", f"{name}="))


@st.composite
def authorization_header(draw: st.DrawFn) -> Shaped:
    """``Authorization: Bearer x``, ``Authorization: Basic base64(user:password)``, or a lone ``Bearer x``."""
    kind = draw(st.sampled_from(["bearer", "basic", "lone bearer"]))
    name = draw(any_case("authorization"))
    if kind == "basic":
        secret = draw(secrets())
        token = base64.b64encode(f"{draw(users)}:{secret}".encode()).decode()
        return Shaped(f"{name}: {draw(any_case('basic'))} {token}", (secret, token), (f"{name}: ",))
    secret = draw(secrets(TOKEN68_CHARS))
    bearer = f"{draw(any_case('bearer'))} {secret}"
    return Shaped(bearer if kind == "lone bearer" else f"{name}: {bearer}", (secret,), ())


@st.composite
def credential_header(draw: st.DrawFn) -> Shaped:
    """A header other than Authorization that carries a credential: ``X-Api-Key: ...``, ``Cookie: ...``."""
    name = draw(st.sampled_from(["X-Api-Key", "x-auth-token", "Private-Token", "Cookie", "Proxy-Authorization"]))
    secret = draw(secrets(QUERY_CHARS.replace(";", "")))
    value = f"session={secret}; theme=dark" if name == "Cookie" else secret
    return Shaped(f"{name}: {value}", (secret,), (f"{name}: ",))


@st.composite
def dsn_key_value(draw: st.DrawFn) -> Shaped:
    """libpq's ``host=... password=...``: plain, or quoted with spaces and escaped quotes inside."""
    if draw(st.booleans()):
        secret = draw(secrets())
        value = secret
    else:
        secret = draw(secrets(PASSWORD_CHARS + " '\\"))
        value = "'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    name = draw(st.sampled_from(["password", "PASSWORD", "sslpassword"]))
    return Shaped(f"host=db port=5432 user=perf {name}={value} dbname=tripo", (secret, value), ("host=db",))


@st.composite
def mapping_entry(draw: st.DrawFn) -> Shaped:
    """A Python or JSON mapping's entry: ``{'password': '...'}``, ``{"api_key": "..."}``."""
    quote = draw(st.sampled_from(["'", '"']))
    secret = draw(secrets(PASSWORD_CHARS.replace(quote, "") + " "))
    name = draw(st.sampled_from(["password", "api_key", "token", "Authorization", "client_secret"]))
    return Shaped(f"{{{quote}{name}{quote}: {quote}{secret}{quote}, {quote}region{quote}: {quote}eu{quote}}}",
                  (secret,), (f"{quote}region{quote}: {quote}eu{quote}",))


shapes = st.one_of(url_with_password(), query_token(), authorization_header(), credential_header(), dsn_key_value(),
                   mapping_entry())
# what an output has around a secret: any text without the marker's Z, on either side of a separator
surroundings = st.text(_PLAIN, max_size=30)
separators = st.sampled_from([" ", "\n", ": ", " (", "\t"])
