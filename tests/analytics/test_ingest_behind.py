"""Ingest falling behind is an alarm for the command center (from ingest's own stats points in the store), with
hysteresis, and while it lasts devices are not called offline for readings that wait at the broker."""

from __future__ import annotations

import pytest

from analytics.engine import Engine
from orchard.catalogue import TELEMETRY
from orchard.models import INGEST_STATS, Point
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.store import TimeSeriesStore
from tests.analytics.conftest import ENGINE_SITE as SITE

NS = 10**9
MIN = 60 * NS
NOW = 1_773_500_000 * NS  # an injected clock: the engine judges by it, the points are placed around it


def stats(store: TimeSeriesStore, at_ns: int, lag_s: float | None, client: str = "ingest-1") -> None:
    values: dict[str, float] = {"received": 100, "stored": 100}
    if lag_s is not None:
        values["lag_p50_s"] = lag_s
    store.write([Point(INGEST_STATS, {"client_id": client}, values, at_ns)])


def behind(book: AlarmBook) -> str | None:
    """The active ingest_behind alarm's text key, None when there is none."""
    return next((a.message for a in book.active() if a.type == "ingest_behind"), None)


# Each row: the stats points (seconds before now, lag in s or None) added before the cycle, and what is active
# after it. Rows run in order on one engine: the later rows see the earlier points and alarms (hysteresis).
SEQUENCE: list[tuple[str, list[tuple[int, float | None]], str | None]] = [
    ("no stats at all: nothing to judge", [], None),
    ("readings arrive 20 s late", [(30, 20.0)], None),
    ("6.7 minutes late", [(10, 400.0)], "alarm.ingest_behind_text"),
    ("a period without readings says nothing about lag", [(3, None)], "alarm.ingest_behind_text"),
    ("still 3.3 minutes late: above a third of the limit, it stays", [(5, 200.0)], "alarm.ingest_behind_text"),
    ("caught up to 50 s: cleared", [(2, 50.0)], None),
]


def test_ingest_lag_raises_holds_and_clears(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    engine = Engine(SITE, store, records, book, ingest_behind_s=300)
    for step, (what, points, expected) in enumerate(SEQUENCE):
        now = NOW + step * MIN
        for ago_s, lag in points:
            stats(store, now - ago_s * NS, lag)
        engine.cycle(now)
        assert behind(book) == expected, what
    raised = [a for a in book.recent(1, NOW + 10 * MIN) if a.type == "ingest_behind"]
    assert len(raised) == 1 and raised[0].severity == "major" and raised[0].plot is None
    words = alarm_text(raised[0], "zh", SITE)
    assert "6.7 分钟" in words.text and "ingest-1" in words.text and "orchard check --service ingest" in words.advice


def test_ingest_silent_for_longer_than_the_limit(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    stats(store, NOW - 6 * MIN, 2.0)  # the last word from ingest, six minutes ago
    Engine(SITE, store, records, book, ingest_behind_s=300).cycle(NOW)
    assert behind(book) == "alarm.ingest_behind_silent_text"


def test_a_second_ingest_keeps_the_site_covered_while_one_is_gone(
        world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    stats(store, NOW - 20 * MIN, 900.0, client="ingest-a")  # stopped long ago, far behind when it did
    stats(store, NOW - 10 * NS, 1.5, client="ingest-b")  # the one that runs is on time
    Engine(SITE, store, records, book, ingest_behind_s=300).cycle(NOW)
    assert behind(book) is None


@pytest.mark.parametrize(("lag_s", "offline_alarms"), [(400.0, 0), (5.0, len(SITE.devices))])
def test_devices_are_not_called_offline_while_ingest_is_behind(
        world: tuple[TimeSeriesStore, Records, AlarmBook], lag_s: float, offline_alarms: int) -> None:
    store, records, book = world
    for d in SITE.devices:  # every device's last stored reading is 30 minutes old
        store.write([Point(TELEMETRY, {"site": SITE.id, "plot": d.plot, "device": d.id}, {"battery_v": 3.9},
                           NOW - 30 * MIN)])
    stats(store, NOW - 5 * NS, lag_s)
    Engine(SITE, store, records, book, ingest_behind_s=300).cycle(NOW)
    assert sum(1 for a in book.active() if a.type == "device_offline") == offline_alarms
