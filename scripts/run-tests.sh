#!/usr/bin/env bash
# Run the whole suite against the real local stack; stop the stack afterwards if we started it.
set -euo pipefail
cd "$(dirname "$0")/.."
started=0
if ! bash stack/stack.sh status >/dev/null 2>&1; then
  bash stack/stack.sh up
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash stack/stack.sh down || true; fi; }
trap cleanup EXIT
.venv/bin/python -m pytest -p no:cacheprovider "$@"
