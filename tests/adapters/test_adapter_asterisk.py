"""Asterisk queue_log adapter: file lines, database rows, follow mode, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from adapter_fixtures import map_fixture

from ccpulse.adapters import QueueLogDbMapper, QueueLogMapper, UnmappableError, follow
from ccpulse.adapters.queue_log import parse_line, parse_row

# The fixture, call by call (epochs from 1764000000 = 2025-11-24T16:00:00Z):
#   lines 2-5    agents join queues and log in
#   6-9   A      answered in sales after 12 s, caller hangs up (COMPLETECALLER); a RINGNOANSWER
#   10-12 B      answered in support after 8 s, agent hangs up (COMPLETEAGENT)
#   13-14 C      abandons sales after 30 s
#   15, 16, 45   JOINEMPTY, FULL, JOINUNAVAIL: offered and abandoned at once
#   17-21 F      times out of sales after 60 s, enters support, answered there (two queues)
#   22-27 G      answered in sales, blind-transferred to support, answered there
#   28-29 H      withheld caller id, leaves sales with a key after 20 s
#   30-32 I      answered in support, attended transfer (LINK form) to PJSIP/2005
#   33-39        pauses, unpause, removal from queues, logoff
#   41-42 J      the log starts mid-call: CONNECT alone, its offer recovered from holdtime
#   43-44 K      removed from sales when it empties (EXITEMPTY) after 45 s
EXPECTED_QUEUE_LOG = [
    (
        2,
        "agent.state",
        "2025-11-24T16:00:01.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1001", "state": "available", "queues": ["sales"]},
    ),
    (
        3,
        "agent.state",
        "2025-11-24T16:00:01.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1001", "state": "available", "queues": ["sales", "support"]},
    ),
    (
        4,
        "agent.state",
        "2025-11-24T16:00:02.000Z",
        None,
        None,
        None,
        {"agent_id": "PJSIP/2002", "state": "available", "queues": ["support"]},
    ),
    (
        5,
        "agent.state",
        "2025-11-24T16:00:03.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1003", "state": "available"},
    ),
    (
        6,
        "contact.offered",
        "2025-11-24T16:01:40.000Z",
        "1764000100.11",
        "sales",
        "voice",
        {"customer_id": "+15550101"},
    ),
    (
        8,
        "contact.answered",
        "2025-11-24T16:01:52.000Z",
        "1764000100.11",
        "sales",
        "voice",
        {"customer_id": "+15550101", "agent_id": "Agent/1001"},
    ),
    (
        9,
        "contact.ended",
        "2025-11-24T16:02:52.000Z",
        "1764000100.11",
        "sales",
        "voice",
        {"customer_id": "+15550101", "agent_id": "Agent/1001"},
    ),
    (
        9,
        "contact.wrapped",
        "2025-11-24T16:02:52.000Z",
        "1764000100.11",
        "sales",
        "voice",
        {"customer_id": "+15550101", "agent_id": "Agent/1001"},
    ),
    (
        10,
        "contact.offered",
        "2025-11-24T16:03:20.000Z",
        "1764000200.21",
        "support",
        "voice",
        {"customer_id": "+15550102"},
    ),
    (
        11,
        "contact.answered",
        "2025-11-24T16:03:28.000Z",
        "1764000200.21",
        "support",
        "voice",
        {"customer_id": "+15550102", "agent_id": "PJSIP/2002"},
    ),
    (
        12,
        "contact.ended",
        "2025-11-24T16:04:50.000Z",
        "1764000200.21",
        "support",
        "voice",
        {"customer_id": "+15550102", "agent_id": "PJSIP/2002"},
    ),
    (
        12,
        "contact.wrapped",
        "2025-11-24T16:04:50.000Z",
        "1764000200.21",
        "support",
        "voice",
        {"customer_id": "+15550102", "agent_id": "PJSIP/2002"},
    ),
    (
        13,
        "contact.offered",
        "2025-11-24T16:05:00.000Z",
        "1764000300.31",
        "sales",
        "voice",
        {"customer_id": "+15550103"},
    ),
    (
        14,
        "contact.abandoned",
        "2025-11-24T16:05:30.000Z",
        "1764000300.31",
        "sales",
        "voice",
        {"customer_id": "+15550103"},
    ),
    (15, "contact.offered", "2025-11-24T16:06:40.000Z", "1764000400.41", "support", "voice", {}),
    (15, "contact.abandoned", "2025-11-24T16:06:40.000Z", "1764000400.41", "support", "voice", {}),
    (16, "contact.offered", "2025-11-24T16:06:50.000Z", "1764000410.42", "sales", "voice", {}),
    (16, "contact.abandoned", "2025-11-24T16:06:50.000Z", "1764000410.42", "sales", "voice", {}),
    (
        17,
        "contact.offered",
        "2025-11-24T16:08:20.000Z",
        "1764000500.51",
        "sales",
        "voice",
        {"customer_id": "+15550105"},
    ),
    (
        18,
        "contact.abandoned",
        "2025-11-24T16:09:20.000Z",
        "1764000500.51",
        "sales",
        "voice",
        {"customer_id": "+15550105"},
    ),
    (
        19,
        "contact.offered",
        "2025-11-24T16:09:21.000Z",
        "1764000500.51",
        "support",
        "voice",
        {"customer_id": "+15550105"},
    ),
    (
        20,
        "contact.answered",
        "2025-11-24T16:09:31.000Z",
        "1764000500.51",
        "support",
        "voice",
        {"customer_id": "+15550105", "agent_id": "PJSIP/2002"},
    ),
    (
        21,
        "contact.ended",
        "2025-11-24T16:10:31.000Z",
        "1764000500.51",
        "support",
        "voice",
        {"customer_id": "+15550105", "agent_id": "PJSIP/2002"},
    ),
    (
        21,
        "contact.wrapped",
        "2025-11-24T16:10:31.000Z",
        "1764000500.51",
        "support",
        "voice",
        {"customer_id": "+15550105", "agent_id": "PJSIP/2002"},
    ),
    (
        22,
        "contact.offered",
        "2025-11-24T16:11:40.000Z",
        "1764000700.61",
        "sales",
        "voice",
        {"customer_id": "+15550106"},
    ),
    (
        23,
        "contact.answered",
        "2025-11-24T16:11:44.000Z",
        "1764000700.61",
        "sales",
        "voice",
        {"customer_id": "+15550106", "agent_id": "Agent/1001"},
    ),
    (
        24,
        "contact.transferred",
        "2025-11-24T16:12:30.000Z",
        "1764000700.61",
        "sales",
        "voice",
        {"customer_id": "+15550106", "agent_id": "Agent/1001", "to_queue": "support"},
    ),
    (
        24,
        "contact.ended",
        "2025-11-24T16:12:30.000Z",
        "1764000700.61",
        "sales",
        "voice",
        {"customer_id": "+15550106", "agent_id": "Agent/1001"},
    ),
    (
        24,
        "contact.wrapped",
        "2025-11-24T16:12:30.000Z",
        "1764000700.61",
        "sales",
        "voice",
        {"customer_id": "+15550106", "agent_id": "Agent/1001"},
    ),
    (
        25,
        "contact.offered",
        "2025-11-24T16:12:31.000Z",
        "1764000700.61",
        "support",
        "voice",
        {"customer_id": "+15550106"},
    ),
    (
        26,
        "contact.answered",
        "2025-11-24T16:12:46.000Z",
        "1764000700.61",
        "support",
        "voice",
        {"customer_id": "+15550106", "agent_id": "PJSIP/2002"},
    ),
    (
        27,
        "contact.ended",
        "2025-11-24T16:13:46.000Z",
        "1764000700.61",
        "support",
        "voice",
        {"customer_id": "+15550106", "agent_id": "PJSIP/2002"},
    ),
    (
        27,
        "contact.wrapped",
        "2025-11-24T16:13:46.000Z",
        "1764000700.61",
        "support",
        "voice",
        {"customer_id": "+15550106", "agent_id": "PJSIP/2002"},
    ),
    (28, "contact.offered", "2025-11-24T16:15:00.000Z", "1764000900.71", "sales", "voice", {}),
    (29, "contact.abandoned", "2025-11-24T16:15:20.000Z", "1764000900.71", "sales", "voice", {}),
    (
        30,
        "contact.offered",
        "2025-11-24T16:16:40.000Z",
        "1764001000.81",
        "support",
        "voice",
        {"customer_id": "+15550108"},
    ),
    (
        31,
        "contact.answered",
        "2025-11-24T16:16:46.000Z",
        "1764001000.81",
        "support",
        "voice",
        {"customer_id": "+15550108", "agent_id": "PJSIP/2002"},
    ),
    (
        32,
        "contact.transferred",
        "2025-11-24T16:18:20.000Z",
        "1764001000.81",
        "support",
        "voice",
        {"customer_id": "+15550108", "agent_id": "PJSIP/2002", "to_agent_id": "PJSIP/2005"},
    ),
    (
        32,
        "contact.ended",
        "2025-11-24T16:18:20.000Z",
        "1764001000.81",
        "support",
        "voice",
        {"customer_id": "+15550108", "agent_id": "PJSIP/2002"},
    ),
    (
        32,
        "contact.wrapped",
        "2025-11-24T16:18:20.000Z",
        "1764001000.81",
        "support",
        "voice",
        {"customer_id": "+15550108", "agent_id": "PJSIP/2002"},
    ),
    (
        34,
        "agent.state",
        "2025-11-24T16:20:01.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1001", "state": "away", "queues": ["sales", "support"]},
    ),
    (
        35,
        "agent.state",
        "2025-11-24T16:30:00.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1001", "state": "available", "queues": ["sales", "support"]},
    ),
    (
        36,
        "agent.state",
        "2025-11-24T16:31:40.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1001", "state": "available", "queues": ["support"]},
    ),
    (
        37,
        "agent.state",
        "2025-11-24T16:31:41.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1001", "state": "offline"},
    ),
    (
        38,
        "agent.state",
        "2025-11-24T16:33:20.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1003", "state": "away"},
    ),
    (
        39,
        "agent.state",
        "2025-11-24T16:35:00.000Z",
        None,
        None,
        None,
        {"agent_id": "Agent/1003", "state": "offline"},
    ),
    (41, "contact.offered", "2025-11-24T16:38:08.000Z", "1764002288.91", "support", "voice", {}),
    (
        41,
        "contact.answered",
        "2025-11-24T16:38:20.000Z",
        "1764002288.91",
        "support",
        "voice",
        {"agent_id": "PJSIP/2002"},
    ),
    (
        42,
        "contact.ended",
        "2025-11-24T16:40:00.000Z",
        "1764002288.91",
        "support",
        "voice",
        {"agent_id": "PJSIP/2002"},
    ),
    (
        42,
        "contact.wrapped",
        "2025-11-24T16:40:00.000Z",
        "1764002288.91",
        "support",
        "voice",
        {"agent_id": "PJSIP/2002"},
    ),
    (
        43,
        "contact.offered",
        "2025-11-24T16:41:40.000Z",
        "1764002500.95",
        "sales",
        "voice",
        {"customer_id": "+15550110"},
    ),
    (
        44,
        "contact.abandoned",
        "2025-11-24T16:42:25.000Z",
        "1764002500.95",
        "sales",
        "voice",
        {"customer_id": "+15550110"},
    ),
    (45, "contact.offered", "2025-11-24T16:43:20.000Z", "1764002600.97", "support", "voice", {}),
    (45, "contact.abandoned", "2025-11-24T16:43:20.000Z", "1764002600.97", "support", "voice", {}),
]

EXPECTED_QUEUE_LOG_DB = [
    (
        1,
        "agent.state",
        "2025-11-24T16:00:00.250Z",
        None,
        None,
        None,
        {"agent_id": "SIP/3001", "state": "available", "queues": ["billing"]},
    ),
    (
        2,
        "contact.offered",
        "2025-11-24T16:10:00.125Z",
        "1764000600.5",
        "billing",
        "voice",
        {"customer_id": "4401"},
    ),
    (
        3,
        "contact.answered",
        "2025-11-24T16:10:07.625Z",
        "1764000600.5",
        "billing",
        "voice",
        {"customer_id": "4401", "agent_id": "SIP/3001"},
    ),
    (
        4,
        "contact.ended",
        "2025-11-24T16:14:00.000Z",
        "1764000600.5",
        "billing",
        "voice",
        {"customer_id": "4401", "agent_id": "SIP/3001"},
    ),
    (
        4,
        "contact.wrapped",
        "2025-11-24T16:14:00.000Z",
        "1764000600.5",
        "billing",
        "voice",
        {"customer_id": "4401", "agent_id": "SIP/3001"},
    ),
    (
        5,
        "contact.offered",
        "2025-11-24T16:25:00.000Z",
        "1764001500.8",
        "billing",
        "voice",
        {"customer_id": "4402"},
    ),
    (
        6,
        "contact.abandoned",
        "2025-11-24T16:25:41.500Z",
        "1764001500.8",
        "billing",
        "voice",
        {"customer_id": "4402"},
    ),
    (7, "contact.offered", "2025-11-24T16:30:00.000Z", "1764001800.9", "billing", "voice", {}),
    (7, "contact.abandoned", "2025-11-24T16:30:00.000Z", "1764001800.9", "billing", "voice", {}),
    (
        8,
        "agent.state",
        "2025-11-24T16:40:00.500Z",
        None,
        None,
        None,
        {"agent_id": "SIP/3001", "state": "away", "queues": ["billing"]},
    ),
]


def test_queue_log_fixture_maps_to_exact_events() -> None:
    assert map_fixture("asterisk_queue_log.log") == EXPECTED_QUEUE_LOG


def test_queue_log_db_fixture_maps_to_exact_events() -> None:
    assert map_fixture("asterisk_queue_log_db.jsonl") == EXPECTED_QUEUE_LOG_DB


def test_answered_call_maps_to_full_canonical_events() -> None:
    mapper = QueueLogMapper()
    mapper.map("1764000100|1764000100.11|sales|NONE|ENTERQUEUE||+15550101|1\n")
    assert mapper.map(b"1764000112|1764000100.11|sales|Agent/1001|CONNECT|12|1764000112.14|4") == [
        {
            "event_id": "ast-1764000100.11-sales-CONNECT-1764000112000:contact.answered",
            "type": "contact.answered",
            "ts": "2025-11-24T16:01:52.000Z",
            "contact_id": "1764000100.11",
            "queue": "sales",
            "channel": "voice",
            "customer_id": "+15550101",
            "agent_id": "Agent/1001",
        }
    ]


def test_join_empty_is_offered_then_abandoned_with_distinct_ids() -> None:
    events = QueueLogMapper().map("1764000400|1764000400.41|support|NONE|JOINEMPTY|")
    assert [(e["event_id"], e["type"], e["ts"]) for e in events] == [
        (
            "ast-1764000400.41-support-JOINEMPTY-1764000400000:contact.offered",
            "contact.offered",
            "2025-11-24T16:06:40.000Z",
        ),
        (
            "ast-1764000400.41-support-JOINEMPTY-1764000400000:contact.abandoned",
            "contact.abandoned",
            "2025-11-24T16:06:40.000Z",
        ),
    ]


def test_db_rows_get_their_own_id_prefix() -> None:
    row = (
        '{"time": 1764000000, "callid": "1.2", "queuename": "q", "agent": "NONE", "event": "FULL"}'
    )
    assert [e["event_id"] for e in QueueLogDbMapper().map(row)] == [
        "astdb-1.2-q-FULL-1764000000000:contact.offered",
        "astdb-1.2-q-FULL-1764000000000:contact.abandoned",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "1764000000|NONE|NONE|NONE|QUEUESTART|",
        "1764000000|NONE|NONE|NONE|CONFIGRELOAD|",
        "1764000105|1764000100.11|sales|Agent/1001|RINGNOANSWER|5000",
        "",
        "   \n",
    ],
)
def test_housekeeping_and_ring_lines_map_to_nothing(line: str) -> None:
    assert QueueLogMapper().map(line) == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello world", "not a queue_log line"),
        ("yesterday|1.1|sales|NONE|ENTERQUEUE||100|1", "not an epoch time"),
        ("1764000000|1.1|sales|NONE|DANCE|", "unknown queue_log event 'DANCE'"),
        ("1764000000|1.1|sales|NONE||", "without an event name"),
    ],
)
def test_garbage_lines_raise_unmappable_with_reason(line: str, reason: str) -> None:
    with pytest.raises(UnmappableError, match=reason):
        QueueLogMapper().map(line)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"event": "ENTERQUEUE"}', "needs at least 'time' and 'event'"),
        ('{"time": "noon", "event": "ENTERQUEUE"}', "not an ISO 8601 time"),
    ],
)
def test_garbage_rows_raise_unmappable_with_reason(row: str, reason: str) -> None:
    with pytest.raises(UnmappableError, match=reason):
        QueueLogDbMapper().map(row)


@pytest.mark.parametrize(
    ("time", "ts"),
    [
        (1764000000, "2025-11-24T16:00:00.000Z"),
        ("1764000000.1259", "2025-11-24T16:00:00.125Z"),
        ("2025-11-24 16:00:00", "2025-11-24T16:00:00.000Z"),
        ("2025-11-24 16:00:00.987654", "2025-11-24T16:00:00.987Z"),
        ("2025-11-24T17:00:00+01:00", "2025-11-24T16:00:00.000Z"),
    ],
)
def test_db_time_accepts_epoch_and_sql_timestamps(time: object, ts: str) -> None:
    row = {"time": time, "callid": "1.1", "queuename": "q", "agent": "NONE", "event": "FULL"}
    import json

    assert QueueLogDbMapper().map(json.dumps(row))[0]["ts"] == ts


def test_connect_holdtime_disagreeing_with_line_times_is_counted() -> None:
    mapper = QueueLogMapper()
    mapper.map("1764000000|9.1|q|NONE|ENTERQUEUE||100|1")
    mapper.map("1764000030|9.1|q|SIP/1|CONNECT|5|9.2|1")
    assert mapper.anomalies["holdtime_mismatch"] == 1


def test_same_call_re_entering_the_same_queue_is_offered_again() -> None:
    mapper = QueueLogMapper()
    lines = [
        "1764000000|9.1|q|NONE|ENTERQUEUE||100|1",
        "1764000010|9.1|q|NONE|EXITWITHKEY|1|1|1|10",
        "1764000020|9.1|q|NONE|ENTERQUEUE||100|1",
    ]
    types = [e["type"] for line in lines for e in mapper.map(line)]
    assert types == ["contact.offered", "contact.abandoned", "contact.offered"]


def test_open_call_state_is_bounded_and_dropped_when_calls_end() -> None:
    mapper = QueueLogMapper(max_open_calls=2)
    for n in range(5):
        mapper.map(f"17640000{n:02d}|call{n}|q|NONE|ENTERQUEUE||100|1")
    assert (len(mapper.calls), mapper.calls.evicted) == (2, 3)
    mapper.map("1764000100|call4|q|NONE|ABANDON|1|1|96")
    assert "call4" not in mapper.calls


def test_partial_pause_keeps_the_agent_available() -> None:
    mapper = QueueLogMapper()
    mapper.map("1764000000|NONE|a|SIP/1|ADDMEMBER|")
    mapper.map("1764000000|NONE|b|SIP/1|ADDMEMBER|")
    assert mapper.map("1764000001|NONE|a|SIP/1|PAUSE|") == []
    assert mapper.map("1764000002|NONE|b|SIP/1|PAUSE|")[0]["state"] == "away"


def test_parse_line_keeps_every_data_field() -> None:
    record = parse_line("1764000920|9.71|sales|NONE|EXITWITHKEY|9|1|1|20")
    assert (record.event, record.datum(1), record.seconds(4), record.datum(9)) == (
        "EXITWITHKEY", "9", 20, "",
    )  # fmt: skip


def test_parse_row_splits_the_single_data_column() -> None:
    record = parse_row('{"time": 1, "callid": "x", "event": "abandon", "data": "1|2|41"}')
    assert (record.event, record.queue, record.data) == ("ABANDON", "NONE", ("1", "2", "41"))


def test_follow_yields_complete_lines_and_holds_back_a_partial_one(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"first|line\nsecond|li")
    stop = threading.Event()
    lines = follow(log, poll_seconds=0.01, stop=stop)
    assert next(lines) == "first|line"
    with log.open("ab") as handle:
        handle.write(b"ne\r\nthird")
    assert next(lines) == "second|line"
    stop.set()
    assert list(lines) == []  # "third" never got its newline


def test_follow_reopens_a_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("old|1\n")
    stop = threading.Event()
    lines = follow(log, poll_seconds=0.01, stop=stop)
    assert next(lines) == "old|1"
    log.rename(tmp_path / "queue_log.1")
    log.write_text("new|1\n")
    assert next(lines) == "new|1"
    stop.set()
    assert list(lines) == []


def test_follow_waits_for_a_missing_file_and_stops(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    assert list(follow(tmp_path / "absent", poll_seconds=0.01, stop=stop)) == []
