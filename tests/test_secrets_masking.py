"""The one masking rule (exporter.secrets.mask_url) on the cases issue 24 names, and on text it must leave alone.
tests/test_fuzz_masking.py draws the secrets; this file pins what the output looks like."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from exporter.cli import _masked_traceback
from exporter.secrets import mask_header, mask_url, safe_url


@pytest.mark.parametrize(("text", "masked"), [
    ("redis://:p@ss@h", "redis://:<secret>@h"),
    ("redis://:p@ss@cache:6379/0 and a@b", "redis://:<secret>@cache:6379/0 and a@b"),
    ("POSTGRESQL://perf:pw@db/tripo", "POSTGRESQL://perf:<secret>@db/tripo"),
    ("HTTPS://user:pass@gateway:8443/api", "HTTPS://user:<secret>@gateway:8443/api"),
    ("https://api/v1?region=eu&token=abc&page=2#top", "https://api/v1?region=eu&token=<secret>&page=2#top"),
    ("https://s3/b/k?X-Amz-Credential=c&X-Amz-Signature=s&X-Amz-Date=d",
     "https://s3/b/k?X-Amz-Credential=<secret>&X-Amz-Signature=<secret>&X-Amz-Date=d"),
    ("http://h/?access_token=a&api_key=b&password=c&sig=d",
     "http://h/?access_token=<secret>&api_key=<secret>&password=<secret>&sig=<secret>"),
    ("Authorization: Bearer eyJhbGciOi.x-y_z", "Authorization: Bearer <secret>"),
    ("authorization: Basic dXNlcjpwYXNz", "authorization: Basic <secret>"),
    ("sent Bearer abc.def to the gateway", "sent Bearer <secret> to the gateway"),
    ("{'Authorization': 'Bearer x', 'X-Team': 'sre'}", "{'Authorization': 'Bearer <secret>', 'X-Team': 'sre'}"),
    ('{"password": "a b", "user": "perf"}', '{"password": "<secret>", "user": "perf"}'),
    ("X-Api-Key: k1 k2", "X-Api-Key: <secret>"),
    ("Content-Type: json, X-Auth-Token: t", "Content-Type: json, X-Auth-Token: <secret>"),
    ("host=db user=perf password=hunter2 dbname=tripo", "host=db user=perf password=<secret> dbname=tripo"),
    ("host=db password = 'it\\'s a secret' dbname=tripo", "host=db password = <secret> dbname=tripo"),
    ("K6_PROMETHEUS_RW_PASSWORD=pw", "K6_PROMETHEUS_RW_PASSWORD=<secret>"),
])
def test_the_secret_is_masked_and_the_rest_kept(text: str, masked: str) -> None:
    assert mask_url(text) == masked
    assert mask_url(masked) == masked


@pytest.mark.parametrize("text", [
    "GET https://gateway.tripo04os.com/api/v1/orders?rider_id=7&status=open",
    "postgresql://perf@db:5432/tripo",  # a user name alone is kept, as Go's url.Redacted keeps it
    "SELECT id FROM trips WHERE passenger_id = $1 AND session_id = $2",
    "SET app.token = '<redacted>'",
    "postgres[0].password: expected a valid string, got a list",
    "api[0].bearer_token: expected a valid string",
    "Content-Type: application/json",
    "keyspace_hits=3 author=ana signal=on",
    "mailto:ops@tripo04os.com",
])
def test_text_without_a_secret_is_left_as_it_is(text: str) -> None:
    assert mask_url(text) == text


def test_a_header_is_masked_by_its_name() -> None:
    assert mask_header("Authorization", "Bearer tok") == "Bearer <secret>"
    assert mask_header("X-Api-Key", "tok") == "<secret>"
    assert mask_header("Cookie", "session=a; theme=dark") == "<secret>"
    assert mask_header("X-Team", "sre") == "sre"
    assert mask_header("X-Upstream", "http://u:pw@h") == "http://u:<secret>@h"


def test_a_label_url_has_no_userinfo_and_no_query() -> None:
    assert safe_url("REDIS://:p@ss@cache:6379/0?token=t#x") == "REDIS://cache:6379/0"
    assert safe_url("http://h:16686") == "http://h:16686"


def test_masking_takes_linear_time_on_long_texts() -> None:
    started = time.perf_counter()
    for text in ("a." * 100_000, "a-" * 100_000, "x=" * 100_000, "http://a:" * 20_000, "'k': " * 40_000):
        mask_url(text)
    assert time.perf_counter() - started < 5  # quadratic backtracking takes minutes on these


def test_an_exception_nothing_caught_shows_its_traceback_masked(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise ValueError('missing "=" after "POSTGRESQL://perf:pw-Zq7@db/tripo" in connection info string')
    except ValueError:
        kind, exc, tb = sys.exc_info()
        assert kind is not None and exc is not None
        _masked_traceback(kind, exc, tb)
    err = capsys.readouterr().err
    assert "Traceback" in err and "POSTGRESQL://perf:<secret>@db/tripo" in err and "Zq7" not in err


@pytest.mark.parametrize("style", ["logfmt", "json"])
def test_a_log_line_masks_every_field_whatever_its_type(style: str) -> None:
    from exporter.logs import _Formatter

    record = logging.LogRecord("exporter.x", logging.WARNING, __file__, 1, "GET http://h/?token=t-Zq7", None, None)
    record.fields = {"url": "REDIS://:p@ss-Zq7@cache", "urls": ["https://u:a-Zq7@h"], "count": 3,
                     "error": ValueError("password=pw-Zq7"), "headers": {"Authorization": "Bearer b-Zq7"}}
    line = _Formatter(style).format(record)
    assert "Zq7" not in line
    assert "REDIS://:<secret>@cache" in line and "count" in line
