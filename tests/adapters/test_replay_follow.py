"""``ccpulse replay --follow``: lines of a growing file reach the replay (ccpulse/replay.py)."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from ccpulse.replay import _lines, add_arguments


def test_follow_reads_the_file_s_lines_as_bytes_and_waits_for_more(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"1760000000|1.1|q1|NONE|ENTERQUEUE||100|1\n1760000005|1.1|q1|agent1|CONNECT|5|1.2|2\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(log), "--follow", "--no-progress"])
    with open(log, "rb") as handle:
        lines = _lines(handle, args)
        first = list(itertools.islice(lines, 2))
    assert first == [b"1760000000|1.1|q1|NONE|ENTERQUEUE||100|1", b"1760000005|1.1|q1|agent1|CONNECT|5|1.2|2"]
