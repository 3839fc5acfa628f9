"""The platform agents' Faust-free part: CCPULSE_PLATFORM_TOPICS, one message in, sends out."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from adapter_fixtures import FIXTURE_FORMATS, records

from ccpulse.adapters import get_mapper
from ccpulse.producer import event_key
from stream.platforms import PlatformFeed, Unmapped, dead_letter_headers, forward
from stream.settings import Settings, SettingsError, platform_topic_table
from stream.topics import topic_names


def settings(platform_topics: str) -> Settings:
    return Settings.from_env({"CCPULSE_PLATFORM_TOPICS": platform_topics})


class RecordingTopic:
    """A fake topic: records each send and returns a delivery future Kafka settles later."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.deliveries: list[asyncio.Future[None]] = []

    async def send(self, *, key: Any = None, value: Any = None, headers: Any = None) -> Any:
        self.sent.append({"key": key, "value": value, "headers": headers})
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, delivery.set_result, None)
        self.deliveries.append(delivery)
        return delivery


class ExplodingMapper:
    def map(self, record: bytes | str) -> list[dict[str, Any]]:
        raise TypeError("unhashable type: 'list'")


# -- CCPULSE_PLATFORM_TOPICS ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("zendesk=raw-zendesk", {"zendesk": "raw-zendesk"}),
        (
            " asterisk-queue-log = raw-asterisk , zendesk=raw-zendesk,",
            {"asterisk-queue-log": "raw-asterisk", "zendesk": "raw-zendesk"},
        ),
    ],
)
def test_platform_topics_parse_to_format_and_topic(raw: str, expected: dict[str, str]) -> None:
    assert platform_topic_table(settings(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("genesys=raw-genesys", "CCPULSE_PLATFORM_TOPICS: unknown format 'genesys'; known formats: "
         "amazon-connect, asterisk-queue-log, asterisk-queue-log-db, twilio-taskrouter, zendesk"),
        ("zendesk", "CCPULSE_PLATFORM_TOPICS: cannot read 'zendesk' (want format=topic)"),
        ("zendesk=", "CCPULSE_PLATFORM_TOPICS: cannot read 'zendesk=' (want format=topic)"),
        ("=raw", "CCPULSE_PLATFORM_TOPICS: cannot read '=raw' (want format=topic)"),
        ("zendesk=a,zendesk=b", "CCPULSE_PLATFORM_TOPICS: 'zendesk=b' repeats a format or a topic"),
        ("zendesk=a,amazon-connect=a", "CCPULSE_PLATFORM_TOPICS: 'amazon-connect=a' repeats a format or a topic"),
        ("zendesk=contact-events", "CCPULSE_PLATFORM_TOPICS: 'contact-events' is the input or the dead-letter topic"),
        ("zendesk=contact-events-dlq",
         "CCPULSE_PLATFORM_TOPICS: 'contact-events-dlq' is the input or the dead-letter topic"),
    ],
)  # fmt: skip
def test_bad_platform_topics_fail_naming_the_variable(raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings(raw)
    assert str(err.value) == message


def test_raw_topics_are_among_the_topics_the_worker_creates() -> None:
    names = topic_names(settings("asterisk-queue-log=raw-asterisk,zendesk=raw-zendesk"))
    assert names[-2:] == ["raw-asterisk", "raw-zendesk"]
    assert topic_names(settings("")) == [
        "contact-events", "contact-events-dlq", "ccpulse-customer-facts", "ccpulse-alerts"
    ]


# -- one message in ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_a_fixture_one_record_per_message_maps_as_the_file_does(name: str) -> None:
    fmt = FIXTURE_FORMATS[name]
    feed, mapper = PlatformFeed(fmt), get_mapper(fmt)
    for line in records(name):
        assert feed.map(line.encode() + b"\n") == mapper.map(line)


@pytest.mark.parametrize(
    ("fmt", "payload", "detail"),
    [
        ("asterisk-queue-log", b"hello world",
         "not a queue_log line (want epoch|callid|queue|agent|event|data...): 'hello world'"),
        ("asterisk-queue-log", b"1764000000|c1|sales|NONE|EXPLODE|\n", "unknown queue_log event 'EXPLODE'"),
        ("asterisk-queue-log", b"1764000000|c1|sales|NONE|ENTERQUEUE||+1555|1\n1764000009|c1|sales|Agent/1|CONNECT|9\n",
         "2 lines in one message; send one asterisk-queue-log line per message"),
        ("asterisk-queue-log-db", b'{"time": 1}', "queue_log row needs at least 'time' and 'event'"),
        ("amazon-connect", b'{"hello": 1}', "not an Amazon Connect contact event, agent event or contact trace record"),
        ("twilio-taskrouter", b"not a callback", "not a TaskRouter callback: no EventType field"),
        ("zendesk", b"[1, 2]", "expected a JSON object, got list"),
        ("zendesk", b'{"type": "zen:event-type:ticket.created"', "not valid JSON: Expecting ',' delimiter at char 40"),
        ("zendesk", b"", "empty message"),
        ("asterisk-queue-log", b" \r\n", "empty message"),
        ("asterisk-queue-log", None, "empty message"),
    ],
)  # fmt: skip
def test_unmappable_messages_give_the_reason(fmt: str, payload: bytes | None, detail: str) -> None:
    assert PlatformFeed(fmt).map(payload) == Unmapped(detail)
    assert Unmapped(detail).reason == "unmappable"


def test_a_json_record_may_span_lines() -> None:
    line = records("zendesk.jsonl")[0]
    pretty = orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2)
    assert PlatformFeed("zendesk").map(pretty) == get_mapper("zendesk").map(line)


def test_a_mapper_bug_is_dead_lettered_not_raised() -> None:
    feed = PlatformFeed("amazon-connect")
    feed.mapper = ExplodingMapper()
    assert feed.map(b"{}") == Unmapped("amazon-connect mapper failed: TypeError: unhashable type: 'list'")


def test_dead_letter_headers_follow_the_runtime_scheme() -> None:
    assert dead_letter_headers(Unmapped("d" * 600 + "é"), "raw-zendesk", 2, 41) == [
        ("ccpulse-reason", b"unmappable"),
        ("ccpulse-detail", b"d" * 500),
        ("ccpulse-source", b"raw-zendesk/2/41"),
    ]


# -- a batch out ------------------------------------------------------------------------------


async def test_forward_sends_keyed_events_and_dead_letters_and_awaits_delivery() -> None:
    lines = [line.encode() for line in records("asterisk_queue_log.log")]
    garbage = b"\xff not a queue_log line"
    batch = [(1, offset, line) for offset, line in enumerate(lines)] + [(1, len(lines), garbage)]
    canonical, dead_letters = RecordingTopic(), RecordingTopic()

    await forward(PlatformFeed("asterisk-queue-log"), "raw-asterisk", batch, canonical, dead_letters)

    mapper = get_mapper("asterisk-queue-log")
    expected = [event for line in lines for event in mapper.map(line)]
    assert canonical.sent == [
        {"key": event_key(event), "value": orjson.dumps(event), "headers": None} for event in expected
    ]
    assert dead_letters.sent == [{"key": None, "value": garbage, "headers": [
        ("ccpulse-reason", b"unmappable"),
        ("ccpulse-detail", "not a queue_log line (want epoch|callid|queue|agent|event|data...): "
                           "'ÿ not a queue_log line'".encode()),
        ("ccpulse-source", f"raw-asterisk/1/{len(lines)}".encode()),
    ]}]  # fmt: skip
    assert all(d.done() for d in canonical.deliveries + dead_letters.deliveries)


async def test_forward_of_ignored_records_sends_nothing() -> None:
    canonical, dead_letters = RecordingTopic(), RecordingTopic()
    batch = [(0, 0, b"1764000000|NONE|NONE|NONE|QUEUESTART|"), (0, 1, b"1764000001|NONE|NONE|NONE|CONFIGRELOAD|")]
    await forward(PlatformFeed("asterisk-queue-log"), "raw-asterisk", batch, canonical, dead_letters)
    assert canonical.sent == [] and dead_letters.sent == []
