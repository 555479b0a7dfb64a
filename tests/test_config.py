"""Configuration: what a valid file means, and the error each invalid one produces."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config.loading import ConfigError, default_config, load_config, parse_config
from exporter.config.masking import masked
from exporter.config.units import parse_duration, parse_ratio

INVALID = sorted((Path(__file__).parent / "invalid_configs").glob("*.yml"))


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_names_the_file_the_key_and_what_was_expected(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# error: ")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("15s", 15), ("1m", 60), ("2h", 7200),
                                               ("30d", 2592000), (5, 5.0), ("1.5s", 1.5)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "ratio"), [("80%", 0.8), (0.8, 0.8), ("1%", 0.01), ("0.5", 0.5)])
def test_ratios(text: str | float, ratio: float) -> None:
    assert parse_ratio(text) == pytest.approx(ratio)


def test_env_vars_expand_with_defaults_and_dollar_escapes() -> None:
    config = parse_config({"api": [{"name": "gw", "base_url": "${TEST_BASE_URL:-http://localhost:8020}",
                                    "endpoints": [{"name": "h", "path": "/price/$$5/${SEGMENT}"}]}]},
                          "x.yaml", env={"SEGMENT": "eu"})
    assert config.api[0].base_url == "http://localhost:8020"
    assert config.api[0].endpoints[0].path == "/price/$5/eu"
    config = parse_config({"api": [{"name": "gw", "base_url": "${TEST_BASE_URL:-http://localhost:8020}",
                                    "endpoints": [{"name": "h", "path": "/"}]}]},
                          "x.yaml", env={"TEST_BASE_URL": "http://staging.tripo04os.com"})
    assert config.api[0].base_url == "http://staging.tripo04os.com"


def test_a_dsn_is_read_as_the_masking_rule_reads_it() -> None:
    """Any case of the scheme, the password up to the last @: what libpq cannot take as written is made so."""
    config = parse_config({"postgres": [{"name": "main", "dsn": "POSTGRESQL://perf:p@ss@db:5432/tripo"}]}, "x.yaml",
                          env={})
    assert config.postgres[0].dsn is not None
    assert config.postgres[0].dsn.get_secret_value() == "postgresql://perf:p%40ss@db:5432/tripo"


def test_secret_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t0ken-from-file\n")
    (tmp_path / "cfg.yaml").write_text(
        "api:\n  - {name: gw, base_url: 'http://x:1', bearer_token_file: token, endpoints: [{name: h, path: /}]}\n")
    config = load_config(tmp_path / "cfg.yaml", env={})
    assert config.api[0].bearer_token is not None
    assert config.api[0].bearer_token.get_secret_value() == "t0ken-from-file"


def test_a_secret_and_its_file_twin_together_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError, match=r"postgres\[0\].password_file: set either 'password' or"):
        parse_config({"postgres": [{"name": "m", "host": "h", "password": "a", "password_file": "pw"}]},
                     "c.yaml", env={}, base_dir=tmp_path)


def test_redis_url_written_as_http_like_the_guide_is_accepted_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = parse_config({"redis": [{"name": "cache", "url": "${REDIS_URL}"}]}, "c.yaml",
                              env={"REDIS_URL": "http://localhost:6379"})
    assert config.redis[0].url.get_secret_value() == "redis://localhost:6379"
    assert any("redis://" in str(getattr(r, "fields", {})) for r in caplog.records)


def test_built_in_default_follows_the_guides_environment_variables() -> None:
    env = {"TEST_BASE_URL": "http://api:8020", "REDIS_URL": "redis://cache:6379/0",
           "JAEGER_HOST": "http://jaeger:16686", "DATABASE_URL": "postgresql://perf:pw@db:5432/tripo"}
    config = default_config(env)
    assert config.api[0].base_url == "http://api:8020"
    assert config.redis[0].url.get_secret_value() == "redis://cache:6379/0"
    assert config.jaeger[0].url == "http://jaeger:16686"
    assert config.postgres[0].dsn is not None
    assert config.postgres[0].dsn.get_secret_value() == env["DATABASE_URL"]
    assert default_config({}).postgres == []
    assert default_config({}).api[0].base_url == "http://localhost:8020"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_check_config_prints_the_effective_config_without_secrets(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2-file-secret")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("""
api:
  - name: gateway
    base_url: http://localhost:8020
    headers: {Authorization: "Bearer tok-abc-123", X-Team: sre}
    endpoints: [{name: health, path: /health}]
postgres:
  - {name: main, dsn: "postgresql://perf:pg-pass-999@db:5432/tripo"}
  - {name: other, host: db, user: perf, password_file: pw}
redis:
  - {name: cache, url: "redis://:redis-pass-777@cache:6379/0"}
""")
    result = run_cli("check-config", str(cfg))
    assert result.returncode == 0, result.stderr
    for secret in ("tok-abc-123", "pg-pass-999", "hunter2-file-secret", "redis-pass-777"):
        assert secret not in result.stdout + result.stderr
    assert "postgresql://perf:<secret>@db:5432/tripo" in result.stdout
    assert "X-Team: sre" in result.stdout
    assert "interval: 15s" in result.stdout


def test_the_credentials_of_security_checks_are_secrets_masked_and_read_from_files(tmp_path: Path) -> None:
    (tmp_path / "expired").write_text("expired-token-from-file\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("""
api:
  - name: gateway
    base_url: http://localhost:8020
    endpoints:
      - name: get_order
        path: /api/v1/orders/1
        security:
          token_tampering: {token: valid-token-111, expired_token_file: expired}
          object_authorization:
            owner: {Authorization: Bearer owner-token-222}
            other: {Authorization: Bearer other-token-333}
            create: {method: POST, path: /api/v1/orders, capture: {order_id: id}}
            attempts: [{path: "/api/v1/orders/{order_id}"}]
          csrf:
            login: {method: POST, path: /web/session, headers: {Authorization: Bearer login-token-444}}
            request: {method: POST, path: /web/orders, form: {pickup: here}}
""")
    tampering = load_config(cfg, env={}).api[0].endpoints[0].security
    assert tampering is not None and tampering.token_tampering is not None
    assert tampering.token_tampering.expired_token.get_secret_value() == "expired-token-from-file"
    result = run_cli("check-config", str(cfg))
    assert result.returncode == 0, result.stderr
    for secret in ("valid-token-111", "expired-token-from-file", "owner-token-222", "other-token-333",
                   "login-token-444"):
        assert secret not in result.stdout + result.stderr
    assert "pickup: here" in result.stdout
    cfg.write_text("api:\n  - {name: g, base_url: 'http://x:1', endpoints: [{name: h, path: /, security: "
                   "{token_tampering: {token: [secret-in-a-list-555], expired_token: x}}}]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(cfg, env={})
    assert "api[0].endpoints[0].security.token_tampering.token: expected a valid string" in str(caught.value)
    assert "secret-in-a-list-555" not in str(caught.value)


def test_check_config_exits_1_with_the_error(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("api:\n  - {name: g, base_url: 'http://x:1', interval: often, endpoints: [{name: h, path: /}]}\n")
    result = run_cli("check-config", str(cfg))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{cfg}: api[0].interval: expected a duration like '5s', got 'often'"


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("perf-exporter ")


def test_check_config_output_is_itself_a_config_that_means_the_same(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "tripo04os.yaml"
    first = run_cli("check-config", str(example))
    assert first.returncode == 0, first.stderr
    (tmp_path / "effective.yaml").write_text(first.stdout)
    assert "cache_hit_rate: 80%" in first.stdout and "lock_timeout: 1s" in first.stdout
    assert "no-token-set" not in first.stdout  # secrets are masked, so only the rest can round-trip
    assert masked(load_config(tmp_path / "effective.yaml")) == masked(load_config(example))
