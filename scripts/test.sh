#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, a virtualenv with the package and its test extras),
# then runs lint, type checks and the test suite. Safe to run again: installed pieces are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(redis-server redis-tools prometheus prometheus-alertmanager prometheus-blackbox-exporter
                 prometheus-postgres-exporter prometheus-redis-exporter prometheus-node-exporter
                 postgresql postgresql-contrib libpq-dev
                 postgresql-15-hypopg chromium nginx)  # PostgreSQL 15 on bookworm; libpq-dev: pg_config; hypopg and
                                                       # chromium: the report's index check and page tests; nginx: the
                                                       # fast local target of bench/bench_scale.py and bench_load.py
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v pg_config >/dev/null || { echo "PostgreSQL server binaries (postgresql-15) are required" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check exporter tests bench
.venv/bin/mypy
# 4 workers on 2 cores: most tests wait (servers starting, polls with deadlines, k6 runs, the 2-minute soak);
# whole modules per worker, the longest first (tests/conftest.py: LONG_FIRST, LOAD_RUNS). The 15 slowest tests
# are printed, to keep the suite short.
.venv/bin/pytest -q --durations=15 -n 4 --dist loadfile "$@"
