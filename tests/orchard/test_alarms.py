"""The alarm lifecycle on SQLite and PostgreSQL: one active alarm per (source, type), severity, ack, clear,
audit trail; and as a hypothesis state machine against a plain model."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orchard.models import SEVERITIES, Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook, AlarmNotFound

NS = 10**9


def frost(severity: str = "warning", source: str = "plot:p01", **details: object) -> Signal:
    return Signal("s", source, "spring_frost", severity, "alarm.spring_frost", details, plot="p01")


def test_raise_update_clear_and_raise_again(records: Records) -> None:
    book = AlarmBook(records)
    a, outcome = book.fire(frost(temp_c=-0.5), 10 * NS)
    assert outcome == "raised" and a.active and not a.acked and a.details == {"temp_c": -0.5}
    b, outcome = book.fire(frost(temp_c=-0.8), 70 * NS)
    assert outcome == "same" and b.id == a.id and b.started_ns == 10 * NS and b.updated_ns == 70 * NS
    cleared = book.clear("plot:p01", "spring_frost", 200 * NS, reason="temp above threshold + 1 C")
    assert cleared is not None and cleared.cleared_ns == 200 * NS
    assert book.clear("plot:p01", "spring_frost", 201 * NS) is None  # nothing active any more
    c, outcome = book.fire(frost(), 300 * NS)
    assert outcome == "raised" and c.id != a.id
    assert [e.action for e in book.events(a.id)] == ["raised", "cleared"]


def test_worse_severity_needs_a_new_ack_better_does_not(records: Records) -> None:
    book = AlarmBook(records)
    a, _ = book.fire(frost("warning"), 1 * NS)
    book.ack(a.id, "adviser-li", 2 * NS)
    b, outcome = book.fire(frost("critical"), 3 * NS)
    assert outcome == "worse" and not b.acked
    book.ack(a.id, "farmer-wang", 4 * NS)
    c, outcome = book.fire(frost("major"), 5 * NS)
    assert outcome == "better" and c.acked_by == "farmer-wang"
    assert [(e.action, e.actor) for e in book.events(a.id)] == [
        ("raised", "system"), ("acked", "adviser-li"), ("severity", "system"), ("acked", "farmer-wang"),
        ("severity", "system")]


def test_a_drop_and_rise_within_an_alarm_tells_nobody_again(records: Records) -> None:
    """People were told of 'major' once: back to it after a drop neither un-acknowledges nor messages; only a
    level they were never told of does."""
    book = AlarmBook(records)
    a, _ = book.fire(frost("warning"), 1 * NS)
    _, outcome = book.fire(frost("major"), 2 * NS)
    assert outcome == "worse"
    book.ack(a.id, "farmer-wang", 3 * NS)
    assert book.fire(frost("warning"), 4 * NS)[1] == "better"
    b, outcome = book.fire(frost("major"), 5 * NS)
    assert outcome == "restored" and b.acked_by == "farmer-wang"
    c, outcome = book.fire(frost("critical"), 6 * NS)
    assert outcome == "worse" and not c.acked


def test_ack_keeps_the_first_and_a_cleared_alarm_still_waits_for_one(records: Records) -> None:
    book = AlarmBook(records)
    a, _ = book.fire(frost(), 1 * NS)
    book.clear(a.source, a.type, 2 * NS)
    assert [x.id for x in book.needing_attention()] == [a.id]
    book.ack(a.id, "farmer-wang", 3 * NS)
    assert book.ack(a.id, "adviser-li", 4 * NS).acked_by == "farmer-wang"
    assert book.needing_attention() == []


def test_assign_comment_and_unknown_alarm(records: Records) -> None:
    book = AlarmBook(records)
    a, _ = book.fire(frost(), 1 * NS)
    assert book.assign(a.id, "adviser-li", "center-zhao", 2 * NS).assignee == "adviser-li"
    book.comment(a.id, "adviser-li", "  已通知农户开启防霜风机  ", 3 * NS)
    with pytest.raises(ValueError, match="empty"):
        book.comment(a.id, "adviser-li", "   ", 4 * NS)
    with pytest.raises(AlarmNotFound):
        book.ack(999, "x", 5 * NS)
    assert book.events(a.id)[-1].detail == {"text": "已通知农户开启防霜风机"}


def test_active_is_worst_first_and_filters_by_plot(records: Records) -> None:
    book = AlarmBook(records)
    book.fire(frost("warning", "plot:p01"), 1 * NS)
    book.fire(Signal("s", "plot:p02", "heat", "major", "alarm.heat", plot="p02"), 2 * NS)
    book.fire(Signal("s", "device:ws-p01", "device_offline", "info", "alarm.offline", plot="p01"), 3 * NS)
    assert [a.type for a in book.active()] == ["heat", "spring_frost", "device_offline"]
    assert [a.type for a in book.active(plots=["p01"])] == ["spring_frost", "device_offline"]


def test_racing_raisers_make_one_alarm(records: Records) -> None:
    book = AlarmBook(records)
    ids: list[int] = []

    def fire(i: int) -> None:
        ids.append(book.fire(frost(n=i), (100 + i) * NS)[0].id)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(book.active()) == 1


def village_frost(site: str, severity: str = "warning") -> Signal:
    return Signal(site, "plot:p01", "spring_frost", severity, "alarm.spring_frost", {}, plot="p01")


def test_villages_sharing_one_records_db_keep_their_alarms_apart(records: Records) -> None:
    """Every village has its plot p01: a frost on each is two alarms; each village's book sees, acks, clears and
    silences its own only; the county's book (no site) sees both."""
    sun, hexi, county = AlarmBook(records, "sunzigou"), AlarmBook(records, "hexi"), AlarmBook(records)
    a, how_a = sun.fire(village_frost("sunzigou"), 10 * NS)
    b, how_b = hexi.fire(village_frost("hexi", "major"), 20 * NS)
    assert (how_a, how_b) == ("raised", "raised") and a.id != b.id
    assert [x.id for x in sun.active()] == [a.id] and [x.id for x in hexi.active()] == [b.id]
    assert {x.id for x in county.active()} == {a.id, b.id}
    with pytest.raises(AlarmNotFound):
        sun.ack(b.id, "wang", 30 * NS)  # another village's alarm by its id: as if it did not exist
    assert sun.events(b.id) == [] and hexi.events(b.id)
    assert sun.clear("plot:p01", "spring_frost", 40 * NS) is not None
    assert hexi.get(b.id).active and [x.id for x in hexi.needing_attention()] == [b.id]
    sun.silence(plot="p01", device=None, rule=None, starts_ns=0, ends_ns=100 * NS, reason="修剪", created_by="zhao",
                now_ns=50 * NS)
    assert len(sun.silences(60 * NS)) == 1 and hexi.silences(60 * NS) == []
    with pytest.raises(ValueError, match="hexi"):
        sun.fire(village_frost("hexi"), 70 * NS)  # a village's book takes only its own signals


@dataclass
class Model:
    severity: str
    peak: str = ""  # the highest severity it has had (what people were told of)
    cleared: bool = False
    acked_by: str | None = None
    events: int = 1


@dataclass
class Book:
    alarms: dict[int, Model] = field(default_factory=dict)
    active: dict[tuple[str, str], int] = field(default_factory=dict)


SOURCES = st.sampled_from(["plot:p01", "device:ws-p01"])
TYPES = st.sampled_from(["spring_frost", "device_offline"])


class Lifecycle(RuleBasedStateMachine):
    """Any sequence of fires, clears, acks and comments keeps the database equal to a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.book = AlarmBook(Lifecycle.records)
        with self.book.engine.begin() as conn:  # each example starts empty
            conn.exec_driver_sql("DELETE FROM alarm_events")
            conn.exec_driver_sql("DELETE FROM alarms")
        self.model = Book()
        self.now = 0

    def tick(self) -> int:
        self.now += NS
        return self.now

    @rule(source=SOURCES, type_=TYPES, severity=st.sampled_from(SEVERITIES))
    def fire(self, source: str, type_: str, severity: str) -> None:
        alarm, outcome = self.book.fire(Signal("s", source, type_, severity, "m"), self.tick())
        key = (source, type_)
        if key not in self.model.active:
            assert outcome == "raised"
            self.model.active[key] = alarm.id
            self.model.alarms[alarm.id] = Model(severity, severity)
            return
        m = self.model.alarms[self.model.active[key]]
        assert alarm.id == self.model.active[key]
        if SEVERITIES.index(severity) > SEVERITIES.index(m.peak):
            m.acked_by = None
            m.peak = severity
            assert outcome == "worse"
        elif SEVERITIES.index(severity) > SEVERITIES.index(m.severity):
            assert outcome == "restored"
        if severity != m.severity:
            m.events += 1
        m.severity = severity

    @rule(source=SOURCES, type_=TYPES)
    def clear(self, source: str, type_: str) -> None:
        cleared = self.book.clear(source, type_, self.tick())
        alarm_id = self.model.active.pop((source, type_), None)
        assert (cleared is None) == (alarm_id is None)
        if alarm_id is not None:
            self.model.alarms[alarm_id].cleared = True
            self.model.alarms[alarm_id].events += 1

    @precondition(lambda self: bool(self.model.alarms))
    @rule(data=st.data(), user=st.sampled_from(["farmer-wang", "adviser-li"]))
    def ack(self, data: st.DataObject, user: str) -> None:
        alarm_id = data.draw(st.sampled_from(sorted(self.model.alarms)))
        self.book.ack(alarm_id, user, self.tick())
        m = self.model.alarms[alarm_id]
        if m.acked_by is None:
            m.acked_by = user
            m.events += 1

    @invariant()
    def database_matches_model(self) -> None:
        active = {(a.source, a.type): a.id for a in self.book.active()}
        assert active == self.model.active
        for alarm_id, m in self.model.alarms.items():
            a = self.book.get(alarm_id)
            assert (a.severity, not a.active, a.acked_by) == (m.severity, m.cleared, m.acked_by)
            assert len(self.book.events(alarm_id)) == m.events


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_lifecycle_state_machine(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        Lifecycle.records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    else:
        from tests.conftest import unique

        Lifecycle.records = Records(request.getfixturevalue("postgres").fresh_database(unique("sm")))
    runner = Lifecycle.TestCase()
    runner.settings = settings(max_examples=40 if backend == "sqlite" else 15, stateful_step_count=25,
                               deadline=None)
    runner.runTest()
