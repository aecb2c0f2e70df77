"""The records DB's retention: what is older than its limit goes, what is still in use stays (SQLite and
PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from orchard.models import DeadLetter, Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.pruning import DAY_NS, prune
from orchard.records.schema import (
    alarm_events,
    audit_log,
    dead_letters,
    digests,
    login_attempts,
    notifications,
    work_order_events,
    work_orders,
)
from orchard.settings import RetentionSettings

NOW = 1_800_000_000 * 10**9


def count(records: Records, table: object, where: object = None) -> int:
    stmt = select(func.count()).select_from(table)  # type: ignore[arg-type]
    if where is not None:
        stmt = stmt.where(where)  # type: ignore[arg-type]
    with records.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def test_prune_deletes_exactly_what_has_outlived_its_retention(records: Records) -> None:
    cfg = RetentionSettings()
    old, recent = NOW - 400 * DAY_NS, NOW - 1 * DAY_NS
    book = AlarmBook(records)
    done, _ = book.fire(Signal("s", "plot:p01", "heat", "major", "alarm.heat_text"), old)
    book.clear("plot:p01", "heat", old + 1)  # cleared long ago: its trail may go
    live, _ = book.fire(Signal("s", "plot:p02", "heat", "major", "alarm.heat_text"), old)  # still active: stays
    outbox = Outbox(records)
    sent_old, pending_old = outbox.queue(done.id, [("a", "inbox"), ("b", "inbox")], 0, "alarm", old)
    outbox.sent(sent_old, old)
    (sent_new,) = outbox.queue(live.id, [("a", "inbox")], 0, "alarm", recent)
    outbox.sent(sent_new, recent)
    records.record_batch([(DeadLetter(NOW - 31 * DAY_NS, "t", b"x", "bad_json: x", "d"), False),
                          (DeadLetter(NOW - 29 * DAY_NS, "t", b"y", "bad_json: y", "d"), False)], (), ())
    with records.engine.begin() as conn:
        for i, closed in enumerate([old, None]):
            conn.execute(insert(work_orders).values(id=i + 1, title="t", source="manual", state="closed" if closed
                                                    else "accepted", created_by="x", created_ns=old,
                                                    state_since_ns=old, closed_ns=closed))
            conn.execute(insert(work_order_events).values(work_order_id=i + 1, time_ns=NOW - 800 * DAY_NS, actor="x"))
        conn.execute(insert(login_attempts), [{"user": "u", "client": "c", "time_ns": t, "ok": False}
                                              for t in (NOW - 91 * DAY_NS, NOW - 89 * DAY_NS)])
        conn.execute(insert(audit_log), [{"time_ns": t, "actor": "x", "action": "a"}
                                         for t in (NOW - 1826 * DAY_NS, NOW - 400 * DAY_NS)])
        conn.execute(insert(digests), [{"day": d, "user": "u", "channel": "inbox", "status": "sent", "sent_ns": t}
                                       for d, t in (("2025-01-01", old), ("2026-12-01", recent))])

    deleted = prune(records, cfg, NOW)

    assert deleted == {"dead_letters": 1, "notifications": 1, "alarm_events": 2, "work_order_events": 1,
                       "login_attempts": 1, "audit_log": 1, "digests": 1}
    assert count(records, alarm_events, alarm_events.c.alarm_id == live.id) == 1  # the active alarm's trail
    assert {n.id for n in outbox.for_alarm(done.id)} == {pending_old}  # never sent: not yet history
    assert count(records, dead_letters) == 1 and count(records, work_order_events) == 1
    assert count(records, notifications) == 2 and count(records, audit_log) == 1
    assert prune(records, cfg, NOW) == {}  # nothing left to do
