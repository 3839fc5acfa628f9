#!/usr/bin/env bash
# Run the benchmark suite (bench/run.py) against the real local stack: installs the
# bench-only packages into .venv if missing, starts the stack if it is down (and stops it
# again afterwards), and passes its arguments on: `bash scripts/bench.sh --quick`,
# `bash scripts/bench.sh --only throughput,freshness`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# Bench-only packages, pinned: the Quix Streams peer (brings confluent-kafka, also used to
# fill topics fast), the profilers, and psutil for process facts.
BENCH_PACKAGES=(quixstreams==3.28.1 pyinstrument==5.1.3 py-spy==0.4.3 psutil==7.2.2)
missing=()
for spec in "${BENCH_PACKAGES[@]}"; do
  name=${spec%%==*}; want=${spec##*==}
  have=$($PY -m pip show "$name" 2>/dev/null | awk '/^Version:/ {print $2}' || true)
  [ "$have" = "$want" ] || missing+=("$spec")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  $PY -m pip install -q "${missing[@]}"
fi
started=0
if ! bash stack/stack.sh status >/dev/null 2>&1; then
  bash stack/stack.sh up
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash stack/stack.sh down || true; fi; }
trap cleanup EXIT
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" $PY -m bench.run "$@"
