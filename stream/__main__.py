"""``python -m stream``: run a worker (same as ``ccpulse worker``)."""

from ccpulse.cli import main

raise SystemExit(main(["worker"]))
