"""The grading line's rules, table-driven: a reject-rate spike and a line standing still during a shift; then
through the engine, from the grading service's per-minute points and the open lot, to an alarm a person reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.engine import Engine
from analytics.rules import load
from analytics.rules.base import LineData, LineRule
from orchard.models import LineMinute
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.lots import Lot, Lots, Tally
from orchard.site import SHIPPED, load_site
from orchard.store import TimeSeriesStore, open_store
from tests.analytics.test_engine import at

NS = 10**9
MIN = 60 * NS
SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
LINE = SITE.line("line-1")  # shifts 08:00-12:00 and 13:30-18:00
NOW = at("2026-10-12T10:00")  # in the morning shift
RULES = {name: cls() for name, cls in load().items() if issubclass(cls, LineRule)}


def lot(fruit: int = 0, rejects: int = 0, started_min: float = 120, last_fruit_min: float | None = None) -> Lot:
    counts = {"extra:36": fruit - rejects, "reject:36": rejects} if fruit else {}
    return Lot(7, SITE.id, LINE.id, "p01", "王建国", "hongyang", "", 2026, NOW - int(started_min * MIN), "t", None,
               None, fruit, fruit * 95.0, counts, {}, {}, None if last_fruit_min is None
               else NOW - int(last_fruit_min * MIN))


def minutes(n: int, fruit: int, rejects: int = 0, reason: str = "rot", lot_id: str = "7", ago: int = 1
            ) -> list[LineMinute]:
    """n minutes ending `ago` minutes before the minute under way, each grading `fruit`, `rejects` of them out."""
    return [LineMinute(SITE.id, LINE.id, lot_id, "p01", NOW - (ago + k) * MIN, fruit,
                       {"extra": fruit - rejects, "reject": rejects}, fruit * 95.0, {reason: rejects}, 120)
            for k in range(n)]


def verdicts(open_lot: Lot | None, reports: list[LineMinute], now: int = NOW) -> dict[str, str]:
    data = LineData(LINE, tuple(sorted(reports, key=lambda m: m.time_ns)), open_lot)
    out = {}
    for name, rule in RULES.items():
        (v,) = rule.evaluate(SITE, data, rule.Config(), now)
        out[name] = v.state if v.signal is None else f"{v.state}:{v.signal.severity}"
    return out


@pytest.mark.parametrize(("open_lot", "reports", "expected"), [
    # a steady lot: 250 fruit/min, 5% rejects
    (lot(5000, 250, last_fruit_min=0.2), minutes(10, 250, 12), {"reject_spike": "clear", "line_stopped": "clear"}),
    # the last ten minutes reject 30% where the lot had 5%: spike
    (lot(5000, 250 + 750, last_fruit_min=0.2), minutes(10, 250, 75),
     {"reject_spike": "fire:warning", "line_stopped": "clear"}),
    # 55% rejects: major
    (lot(5000, 250 + 1375, last_fruit_min=0.2), minutes(10, 250, 137),
     {"reject_spike": "fire:major", "line_stopped": "clear"}),
    # a lot that was poor all along (30% rejects): not a spike, the fruit is just like that
    (lot(5000, 1500, last_fruit_min=0.2), minutes(10, 250, 75), {"reject_spike": "clear", "line_stopped": "clear"}),
    # a young lot, judged against the 8% expectation: 30% is a spike
    (lot(600, 180, started_min=3, last_fruit_min=0.2), minutes(3, 200, 60),
     {"reject_spike": "fire:warning", "line_stopped": "clear"}),
    # too few fruit in the window to judge
    (lot(40, 20, started_min=3, last_fruit_min=0.2), minutes(2, 20, 10), {"reject_spike": "hold",
                                                                          "line_stopped": "clear"}),
    # between the clearing and the firing rate: hold
    (lot(5000, 125 + 550, last_fruit_min=0.2), minutes(10, 250, 55), {"reject_spike": "hold",
                                                                      "line_stopped": "clear"}),
    # no lot open: nothing to judge, nothing stopped
    (None, minutes(15, 0, lot_id=""), {"reject_spike": "clear", "line_stopped": "clear"}),
    # lot open, belt empty for 15 minutes while the service reports: stopped
    (lot(3000, 100, last_fruit_min=15), minutes(14, 0), {"reject_spike": "clear", "line_stopped": "fire:warning"}),
    # ... for 8 minutes: not yet
    (lot(3000, 100, last_fruit_min=8), minutes(7, 0), {"reject_spike": "clear", "line_stopped": "clear"}),
    # a lot started 5 minutes ago with nothing on the belt yet: give it time
    (lot(0, 0, started_min=5), minutes(4, 0), {"reject_spike": "clear", "line_stopped": "clear"}),
    # no reports at all for 20 minutes: the grading service itself stopped
    (lot(3000, 100, last_fruit_min=20), minutes(5, 250, 10, ago=20),
     {"reject_spike": "clear", "line_stopped": "fire:warning"}),
])
def test_line_rules(open_lot: Lot | None, reports: list[LineMinute], expected: dict[str, str]) -> None:
    assert verdicts(open_lot, reports) == expected


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-10-12T12:40", "clear"),  # lunch break
    ("2026-10-12T21:00", "clear"),  # evening
    ("2026-10-12T14:30", "fire:warning"),  # afternoon shift
])
def test_line_stopped_only_counts_in_a_shift(local: str, expected: str) -> None:
    now = at(local)
    open_lot = Lot(7, SITE.id, LINE.id, "p01", "王", "hongyang", "", 2026, now - 120 * MIN, "t", None, None, 10,
                   950.0, {"extra:36": 10}, {}, {}, now - 30 * MIN)
    assert verdicts(open_lot, [], now)["line_stopped"] == expected


def test_variants_say_what_stopped() -> None:
    rule = RULES["line_stopped"]
    silent = LineData(LINE, (), lot(3000, 100, last_fruit_min=20))
    (v,) = rule.evaluate(SITE, silent, rule.Config(), NOW)
    assert v.signal is not None and v.signal.message == "alarm.line_stopped_silent_text"
    blind = [LineMinute(SITE.id, LINE.id, "7", "p01", NOW - k * MIN, 0, {}, 0.0, {}, 0, 110) for k in range(1, 12)]
    (v,) = rule.evaluate(SITE, LineData(LINE, tuple(blind), lot(3000, 100, last_fruit_min=15)), rule.Config(), NOW)
    assert v.signal is not None and v.signal.message == "alarm.line_stopped_camera_text"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TimeSeriesStore, Records, AlarmBook]]:
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    yield store, records, AlarmBook(records)
    store.close()
    records.close()


def test_engine_raises_and_clears_line_alarms(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    site = SITE.model_copy(update={"cameras": (), "devices": ()})  # the line alone
    lots = Lots(records, site)
    open_lot = lots.start(LINE.id, "p05", "tester", now_ns=NOW - 90 * MIN)
    t = Tally()
    for k in range(4000):
        t.add("reject" if k % 20 == 0 else "extra", 36, 95.0, ("rot",) if k % 20 == 0 else (), NOW - 20 * MIN)
    lots.add(open_lot.id, t)
    spike = [LineMinute(SITE.id, LINE.id, str(open_lot.id), "p05", NOW - k * MIN, 200, {"extra": 120, "reject": 80},
                        19000.0, {"rot": 70, "defects": 10}, 120) for k in range(1, 11)]
    t2 = Tally()
    for k in range(2000):
        t2.add("reject" if k % 5 < 2 else "extra", 36, 95.0, ("rot",), NOW - MIN)
    lots.add(open_lot.id, t2)
    store.write([m.point() for m in spike])
    engine = Engine(site, store, records, book)
    engine.cycle(NOW)
    (alarm,) = book.active()
    assert (alarm.source, alarm.type, alarm.severity, alarm.plot) == ("line:line-1", "reject_spike", "warning", None)
    words = alarm_text(alarm, "zh", site)
    assert "次果率 40.0%" in words.text and "主要原因：腐烂" in words.text and "陈玉兰" in words.text
    assert "mostly: rot" in alarm_text(alarm, "en", site).text

    # fifteen minutes later nothing has been graded, the service still reporting: the line stands still
    later = NOW + 15 * MIN
    store.write([LineMinute(SITE.id, LINE.id, str(open_lot.id), "p05", later - k * MIN, 0, {}, 0.0, {}, 120).point()
                 for k in range(1, 15)])
    engine.cycle(later)
    assert {a.type for a in book.active()} == {"line_stopped"}  # the spike's window is empty now: cleared
    lots.end(open_lot.id, "tester", later + MIN)
    engine.cycle(later + 2 * MIN)
    assert book.active() == []
