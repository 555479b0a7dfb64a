#!/usr/bin/env bash
# The monitoring stack without Docker: Debian's Prometheus and Alertmanager (and node_exporter, when installed)
# on this machine, Prometheus loaded with the repository's rules (rules/*.rules.yml, rules/infrastructure/) and
# scraping the exporter and node_exporter, alerts going to the Alertmanager.
#
#   bash scripts/monitoring-stack.sh start    # then open http://localhost:9090/alerts and http://localhost:9093
#   bash scripts/monitoring-stack.sh status
#   bash scripts/monitoring-stack.sh stop
#
# Packages: apt-get install prometheus prometheus-alertmanager prometheus-node-exporter (scripts/test.sh
# installs them). Everything listens on 127.0.0.1; settings, with their defaults:
#   EXPORTER_TARGET=127.0.0.1:9469   where perf-exporter serves /metrics (`perf-exporter run --demo`)
#   PROMETHEUS_PORT=9090 ALERTMANAGER_PORT=9093 NODE_EXPORTER_PORT=9100
#   NODE_EXPORTER=start              `external`: scrape one already running on NODE_EXPORTER_PORT; `none`
#   MONITORING_DIR=${TMPDIR:-/tmp}/perf-exporter-monitoring   configs, data, logs and pid files
#   SCRAPE_INTERVAL=15s
# Grafana is not packaged by Debian: with Grafana installed, point its provisioning at grafana/provisioning (see
# docs/monitoring.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

EXPORTER_TARGET=${EXPORTER_TARGET:-127.0.0.1:9469}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
NODE_EXPORTER_PORT=${NODE_EXPORTER_PORT:-9100}
NODE_EXPORTER=${NODE_EXPORTER:-start}
MONITORING_DIR=${MONITORING_DIR:-${TMPDIR:-/tmp}/perf-exporter-monitoring}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-15s}
SERVERS=(node_exporter alertmanager prometheus)

need() { command -v "$1" >/dev/null || { echo "$1 is not installed: apt-get install $2" >&2; exit 1; }; }

running() {  # name -> 0 if its recorded process is alive
  local pidfile="$MONITORING_DIR/$1.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_ready() {  # url what
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, what = sys.argv[1:3]
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=1):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"{what} did not answer {url} within 30 s")
PY
}

launch() {  # name binary args...
  local name=$1; shift
  if running "$name"; then echo "$name already running (pid $(cat "$MONITORING_DIR/$name.pid"))"; return; fi
  nohup "$@" >"$MONITORING_DIR/$name.log" 2>&1 &
  echo $! >"$MONITORING_DIR/$name.pid"
}

write_configs() {
  local node_job=""
  if [ "$NODE_EXPORTER" != "none" ]; then
    node_job="  - job_name: node
    static_configs:
      - targets: [\"127.0.0.1:$NODE_EXPORTER_PORT\"]"
  fi
  cat >"$MONITORING_DIR/prometheus.yml" <<YAML
# Written by scripts/monitoring-stack.sh
global:
  scrape_interval: $SCRAPE_INTERVAL
  evaluation_interval: $SCRAPE_INTERVAL
rule_files:
  - $REPO/rules/*.rules.yml
  - $REPO/rules/infrastructure/*.rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$ALERTMANAGER_PORT"]
scrape_configs:
  - job_name: perf-exporter
    static_configs:
      - targets: ["$EXPORTER_TARGET"]
$node_job
YAML
  cp "$REPO/compose/alertmanager.yml" "$MONITORING_DIR/alertmanager.yml"
}

start() {
  need prometheus prometheus
  need prometheus-alertmanager prometheus-alertmanager
  mkdir -p "$MONITORING_DIR"
  write_configs
  promtool check config "$MONITORING_DIR/prometheus.yml" >/dev/null  # the config and every rule file load
  if [ "$NODE_EXPORTER" = "start" ]; then
    need prometheus-node-exporter prometheus-node-exporter
    launch node_exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE_EXPORTER_PORT"
  fi
  launch alertmanager prometheus-alertmanager --config.file="$MONITORING_DIR/alertmanager.yml" \
    --storage.path="$MONITORING_DIR/alertmanager-data" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address=
  launch prometheus prometheus --config.file="$MONITORING_DIR/prometheus.yml" \
    --storage.tsdb.path="$MONITORING_DIR/prometheus-data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle
  [ "$NODE_EXPORTER" = "start" ] && wait_ready "http://127.0.0.1:$NODE_EXPORTER_PORT/metrics" node_exporter
  wait_ready "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" Alertmanager
  wait_ready "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" Prometheus
  echo "Prometheus   http://127.0.0.1:$PROMETHEUS_PORT  (rules from $REPO/rules, scraping $EXPORTER_TARGET)"
  echo "Alertmanager http://127.0.0.1:$ALERTMANAGER_PORT"
  echo "logs and data in $MONITORING_DIR; stop with: bash scripts/monitoring-stack.sh stop"
}

stop() {
  local name pid
  for name in prometheus alertmanager node_exporter; do
    if running "$name"; then
      pid=$(cat "$MONITORING_DIR/$name.pid")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      echo "stopped $name (pid $pid)"
    fi
    rm -f "$MONITORING_DIR/$name.pid"
  done
}

status() {
  local name
  for name in "${SERVERS[@]}"; do
    if running "$name"; then echo "$name: running (pid $(cat "$MONITORING_DIR/$name.pid"))"
    else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
