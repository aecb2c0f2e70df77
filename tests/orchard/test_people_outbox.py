"""People and the outbox on SQLite and PostgreSQL: who covers a plot, quiet hours, and a notification's life."""

from __future__ import annotations

from datetime import time

import pytest

from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, User

NS = 10**9


def test_each_village_routes_its_plot_p01_to_its_own_people(records: Records) -> None:
    """Villages sharing one records DB each have a plot p01: a village's book finds its own farmer, adviser and
    command center for it (and the people of no village, from before the county), never the other village's."""
    everyone = People(records)
    for village in ("sunzigou", "hexi"):
        everyone.upsert(User(f"farmer-{village}", "果农", "farmer", village=village))
        everyone.set_plots(f"farmer-{village}", ["p01"], "owns")
        everyone.upsert(User(f"center-{village}", "村委", "center", village=village))
    everyone.upsert(User("old-center", "老指挥中心", "center"))
    everyone.upsert(User("town-1", "镇农业站", "town", town="yongning"))
    sun = People(records, "sunzigou")
    assert [u.name for u in sun.for_plot("p01", "farmer")] == ["farmer-sunzigou"]
    assert [u.name for u in sun.for_plot("p01", "center")] == ["center-sunzigou", "old-center"]
    assert [u.name for u in People(records, "hexi").for_plot("p01", "farmer")] == ["farmer-hexi"]
    assert [u.name for u in sun.here()] == ["center-sunzigou", "old-center", "farmer-sunzigou"]
    assert len(everyone.for_plot("p01", "farmer")) == 2 and len(everyone.here()) == 6


def test_people_by_plot_and_role(records: Records) -> None:
    people = People(records)
    people.upsert(User("wang", "王建国", "farmer", channels=("dingtalk", "inbox")))
    people.upsert(User("li", "李明", "adviser", quiet_from="22:00", quiet_to="06:30"))
    people.upsert(User("zhao", "赵主任", "center"))
    people.upsert(User("gone", "离职", "center", active=False))
    people.set_plots("wang", ["p01"], "owns")
    people.set_plots("li", ["p01", "p02"], "covers")
    people.upsert(User("wang", "王建国", "farmer", phone="138", channels=("sms",)))  # an update keeps the plots
    assert [u.name for u in people.for_plot("p01", "farmer")] == ["wang"]
    assert people.get("wang").channels == ("sms",)  # type: ignore[union-attr]
    assert [u.name for u in people.for_plot("p02", "adviser")] == ["li"]
    assert [u.name for u in people.for_plot("p09", "center")] == ["zhao"]  # the center sees every plot
    li = people.get("li")
    assert li is not None and li.quiet_at(time(23, 0)) and li.quiet_at(time(6, 0)) and not li.quiet_at(time(7, 0))
    with pytest.raises(ValueError, match="role"):
        people.upsert(User("x", "X", "boss"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels"):
        people.upsert(User("x", "X", "farmer", channels=("pigeon",)))


def test_a_notification_from_queue_to_read(records: Records) -> None:
    alarm, _ = AlarmBook(records).fire(Signal("s", "plot:p01", "wind", "major", "alarm.wind_text", {}, "p01"), NS)
    outbox = Outbox(records)
    a, b = outbox.queue(alarm.id, [("wang", "dingtalk"), ("wang", "inbox")], 0, "alarm", 10 * NS,
                        not_before_ns=20 * NS)
    assert outbox.due(15 * NS) == [] and {n.id for n in outbox.due(20 * NS)} == {a, b}
    outbox.failed(a, "HTTP 500", retry_at_ns=30 * NS)
    outbox.sent(b, 21 * NS)
    assert [n.id for n in outbox.due(25 * NS)] == []
    outbox.sent(a, 31 * NS)
    first = outbox.read(a, 40 * NS)
    assert first is not None and first.read_ns == 40 * NS and first.attempts == 2 and first.last_error is None
    assert outbox.read(a, 50 * NS).read_ns == 40 * NS  # type: ignore[union-attr]  # the first read counts
    assert outbox.last_stage([alarm.id]) == {alarm.id: (0, 10 * NS)}
    assert [n.id for n in outbox.for_user("wang")] == [b, a]
