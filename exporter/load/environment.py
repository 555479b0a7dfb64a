"""The environment k6 runs with, made by :func:`k6_environment` alone: the variables its scripts read, k6's own
options and what the Go runtime needs, nothing else. Bench's own environment (``DATABASE_URL``, cloud credentials,
tokens) never reaches k6 or its scripts' ``__ENV``."""

from __future__ import annotations

from collections.abc import Mapping

# every __ENV.X that exporter/load/scenarios/*.js read (tests/test_load_environment.py keeps the two in step)
SCRIPT_VARIABLES = frozenset({
    "TEST_BASE_URL", "JAEGER_HOST", "THRESHOLDS", "WARMUP", "THINK_TIME", "HOT_ORDERS",
    "VUS", "RATE", "DURATION", "START_RATE", "STEP_RATE", "STEPS", "STEP_DURATION",
})
K6_OPTIONS_PREFIX = "K6_"  # k6's own options (K6_PROMETHEUS_RW_*, K6_NO_USAGE_REPORT...): meant for k6
# what a Go program needs to run and to reach the target: its search path, a home and a temporary directory, the
# proxies and CA certificates of the network, and the Go runtime's own settings
RUNTIME_VARIABLES = frozenset({
    "PATH", "HOME", "XDG_CONFIG_HOME", "TMPDIR", "TZ",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG",
})


def k6_environment(environ: Mapping[str, str], plan_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a k6 process: the allowed variables of ``environ`` (bench's), then the run's own."""
    kept = {name: value for name, value in environ.items()
            if name in SCRIPT_VARIABLES or name in RUNTIME_VARIABLES or name.startswith(K6_OPTIONS_PREFIX)}
    return {**kept, **plan_env}
