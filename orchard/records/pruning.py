"""The records DB within bounds: what piles up (dead letters, notifications and their receipts, the trails of
alarms and work orders, digests, sign-in attempts, expired sessions, the audit log) is deleted once older than
its retention (`ORCHARD_RETENTION__*`). Analytics runs `prune` once an hour. What is still in use stays: events
of an active alarm or an open work order, a notification not yet sent, a session not yet expired.

Deletes go in chunks of a few thousand rows, so neither SQLite nor PostgreSQL holds a long lock meanwhile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.sql.elements import ColumnElement

from orchard.records import Records
from orchard.records.schema import (
    alarm_events,
    alarms,
    audit_log,
    dead_letters,
    digests,
    login_attempts,
    notifications,
    sessions,
    work_order_events,
    work_orders,
)
from orchard.settings import RetentionSettings

NS = 1_000_000_000
DAY_NS = 86400 * NS
CHUNK = 5000


def _chunked(records: Records, table: Any, key: Any, where: ColumnElement[bool]) -> int:
    deleted = 0
    while True:
        ids = select(key).where(where).limit(CHUNK).scalar_subquery()
        with records.engine.begin() as conn:
            n = conn.execute(delete(table).where(key.in_(ids))).rowcount or 0
        deleted += n
        if n < CHUNK:
            return deleted


def prune(records: Records, cfg: RetentionSettings, now_ns: int) -> dict[str, int]:
    """Delete what has outlived its retention; returns rows deleted per table (only those with any)."""
    def before(days: float) -> int:
        return now_ns - int(days * DAY_NS)

    inactive_alarm = ~exists().where(alarms.c.id == alarm_events.c.alarm_id, alarms.c.cleared_ns.is_(None))
    closed_order = exists().where(work_orders.c.id == work_order_events.c.work_order_id,
                                  work_orders.c.closed_ns.is_not(None))
    done = {
        "dead_letters": _chunked(records, dead_letters, dead_letters.c.id,
                                 dead_letters.c.received_ns < before(cfg.dead_letters_days)),
        "notifications": _chunked(records, notifications, notifications.c.id,
                                  (notifications.c.created_ns < before(cfg.notifications_days))
                                  & (notifications.c.status != "pending")),
        "alarm_events": _chunked(records, alarm_events, alarm_events.c.id,
                                 (alarm_events.c.time_ns < before(cfg.alarm_events_days)) & inactive_alarm),
        "work_order_events": _chunked(records, work_order_events, work_order_events.c.id,
                                      (work_order_events.c.time_ns < before(cfg.work_order_events_days))
                                      & closed_order),
        "login_attempts": _chunked(records, login_attempts, login_attempts.c.id,
                                   login_attempts.c.time_ns < before(cfg.login_attempts_days)),
        "sessions": _chunked(records, sessions, sessions.c.token_hash, sessions.c.expires_ns < now_ns),
        "audit_log": _chunked(records, audit_log, audit_log.c.id, audit_log.c.time_ns < before(cfg.audit_days)),
    }
    with records.engine.begin() as conn:  # digests have a composite key: by their time directly
        done["digests"] = conn.execute(delete(digests).where(
            digests.c.sent_ns < before(cfg.digests_days))).rowcount or 0
    return {table: n for table, n in done.items() if n}
