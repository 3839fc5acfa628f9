#!/usr/bin/env bash
# make demo: the local stack, a worker, the live simulator and the wallboard; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LOGS=${CCPULSE_STACK_DIR:-$PWD/.stack}/logs
mkdir -p "$LOGS"
export CCPULSE_APP_ID=${CCPULSE_APP_ID:-ccpulse-demo}
export CCPULSE_INPUT_TOPIC=${CCPULSE_INPUT_TOPIC:-ccpulse-demo-events}
export CCPULSE_DEAD_LETTER_TOPIC=${CCPULSE_DEAD_LETTER_TOPIC:-ccpulse-demo-dlq}
export CCPULSE_WEB_PORT=${CCPULSE_WEB_PORT:-6066}
export CCPULSE_DATA_DIR=${CCPULSE_DATA_DIR:-${CCPULSE_STACK_DIR:-$PWD/.stack}/demo-data}
WALLBOARD_PORT=${CCPULSE_WALLBOARD_PORT:-8088}

bash stack/stack.sh up
pids=()
stop() {
  echo; echo "ccpulse demo: stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash stack/stack.sh down
}
trap stop EXIT INT TERM

$PY -m ccpulse.cli worker >"$LOGS/demo-worker.log" 2>&1 & pids+=($!)
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$CCPULSE_WEB_PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
# A live center: 4 queues, 24 agents, arrivals 4x the daily profile, with a short arrival spike
# on billing after 10 minutes so the service-level alert has something to show.
$PY -m ccpulse.cli simulate --rate 4 --speed 1 --spike "10m:3:10m@billing" --dirty 0.002 \
  >"$LOGS/demo-simulator.log" 2>&1 & pids+=($!)
$PY -m ccpulse.cli wallboard --port "$WALLBOARD_PORT" >"$LOGS/demo-wallboard.log" 2>&1 & pids+=($!)

cat <<MSG

ccpulse demo is running (logs in $LOGS):
  wallboard   http://127.0.0.1:$WALLBOARD_PORT/
  metrics     http://127.0.0.1:$CCPULSE_WEB_PORT/metrics
  prometheus  http://127.0.0.1:${CCPULSE_PROMETHEUS_PORT:-9090}/graph?g0.expr=ccpulse_service_level_ratio
  KPIs        .venv/bin/ccpulse kpis --window 15m     (with CCPULSE_APP_ID=$CCPULSE_APP_ID)
Press Ctrl-C to stop everything.
MSG
wait "${pids[0]}"
