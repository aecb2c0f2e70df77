"""Notifications: one row per (alarm, recipient, channel, stage, kind), with its delivery status, attempts and
the moment the recipient read it (the signed link opened, or the inbox entry seen).

The analytics service queues and sends them; the dashboard shows who was sent what and who read it, and
records reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from orchard.records import Records
from orchard.records.schema import notifications as N


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    alarm_id: int
    user: str
    channel: str
    stage: int
    kind: str  # alarm | reminder | cleared
    status: str  # pending | sent | failed
    attempts: int
    next_try_ns: int
    last_error: str | None
    created_ns: int
    sent_ns: int | None
    read_ns: int | None


def _row(r: object) -> Notification:
    return Notification(*(getattr(r, c.name) for c in N.columns))


class Outbox:
    def __init__(self, records: Records) -> None:
        self.engine = records.engine

    def queue(self, alarm_id: int, recipients: Iterable[tuple[str, str] | tuple[str, str, int | None]], stage: int,
              kind: str, now_ns: int, not_before_ns: int | None = None) -> list[int]:
        """One pending notification per (user, channel[, not before]), all in one transaction (a stage is queued
        whole or not at all, so a retry never repeats half of it); returns their ids."""
        ids = []
        with self.engine.begin() as conn:
            for user, channel, *own in recipients:
                wait = own[0] if own else not_before_ns
                key = conn.execute(insert(N).values(
                    alarm_id=alarm_id, user=user, channel=channel, stage=stage, kind=kind, status="pending",
                    attempts=0, next_try_ns=max(now_ns, wait or 0), created_ns=now_ns)).inserted_primary_key
                assert key is not None
                ids.append(int(key[0]))
        return ids

    def due(self, now_ns: int, limit: int = 200) -> list[Notification]:
        stmt = (select(N).where(N.c.status == "pending", N.c.next_try_ns <= now_ns)
                .order_by(N.c.next_try_ns, N.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def sent(self, nid: int | Iterable[int], now_ns: int) -> None:
        """Delivered (several at once: one group post carries many notifications, recorded together)."""
        ids = [nid] if isinstance(nid, int) else list(nid)
        with self.engine.begin() as conn:
            conn.execute(update(N).where(N.c.id.in_(ids)).values(status="sent", sent_ns=now_ns, last_error=None,
                                                                  attempts=N.c.attempts + 1))

    def failed(self, nid: int | Iterable[int], error: str, retry_at_ns: int | None) -> None:
        """A failed attempt: try again at retry_at_ns, or give up (status failed) when None."""
        ids = [nid] if isinstance(nid, int) else list(nid)
        values: dict[str, object] = {"attempts": N.c.attempts + 1, "last_error": error[:500]}
        values |= {"next_try_ns": retry_at_ns} if retry_at_ns is not None else {"status": "failed"}
        with self.engine.begin() as conn:
            conn.execute(update(N).where(N.c.id.in_(ids)).values(**values))

    def postpone(self, ids: Iterable[int], until_ns: int, reason: str | None = None) -> None:
        """Not tried yet, later (a robot's minute is full): no attempt is counted."""
        values: dict[str, object] = {"next_try_ns": until_ns}
        if reason is not None:
            values["last_error"] = reason[:500]
        with self.engine.begin() as conn:
            conn.execute(update(N).where(N.c.id.in_(list(ids)), N.c.status == "pending").values(**values))

    def posts_since(self, channel: str, since_ns: int) -> int:
        """At most how many posts a group channel made since then: one per (alarm, kind, stage) sent (a summary
        post carried several, so this errs high, the safe side for a robot's per-minute limit)."""
        stmt = (select(func.count()).select_from(
            select(N.c.alarm_id, N.c.kind, N.c.stage).where(N.c.channel == channel, N.c.status == "sent",
                                                             N.c.sent_ns >= since_ns).distinct().subquery()))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def read(self, nid: int, now_ns: int) -> Notification | None:
        """Record the first read; later opens keep it. None when there is no such notification."""
        with self.engine.begin() as conn:
            conn.execute(update(N).where(N.c.id == nid, N.c.read_ns.is_(None)).values(read_ns=now_ns))
            row = conn.execute(select(N).where(N.c.id == nid)).first()
        return _row(row) if row is not None else None

    def get(self, nid: int) -> Notification | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(N).where(N.c.id == nid)).first()
        return _row(row) if row is not None else None

    def sent_with(self, note: Notification) -> list[Notification]:
        """The notifications that went out in one message with this one (a group of alarms: the same person,
        channel, kind and step, sent at the same moment), this one first; just this one when it went alone or
        has not gone yet."""
        if note.sent_ns is None:
            return [note]
        stmt = select(N).where(N.c.user == note.user, N.c.channel == note.channel, N.c.kind == note.kind,
                               N.c.stage == note.stage, N.c.sent_ns == note.sent_ns).order_by(N.c.id)
        with self.engine.connect() as conn:
            others = [_row(r) for r in conn.execute(stmt) if r.id != note.id]
        return [note, *others]

    def read_all(self, ids: Iterable[int], now_ns: int) -> None:
        """Record the first read of each."""
        with self.engine.begin() as conn:
            conn.execute(update(N).where(N.c.id.in_(list(ids)), N.c.read_ns.is_(None)).values(read_ns=now_ns))

    def for_alarm(self, alarm_id: int) -> list[Notification]:
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(select(N).where(N.c.alarm_id == alarm_id).order_by(N.c.id))]

    def for_user(self, user: str, limit: int = 200) -> list[Notification]:
        stmt = select(N).where(N.c.user == user).order_by(N.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def last_stage(self, alarm_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Per alarm: (highest stage notified, when that stage or its last reminder was queued)."""
        ids = list(alarm_ids)
        if not ids:
            return {}
        stmt = (select(N.c.alarm_id, func.max(N.c.stage), func.max(N.c.created_ns))
                .where(N.c.alarm_id.in_(ids), N.c.kind != "cleared").group_by(N.c.alarm_id))
        with self.engine.connect() as conn:
            return {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(stmt)}
