"""The alarm lifecycle, shared by the analytics service (raise, clear) and the dashboard (ack, assign, comment).

One active alarm per (site, source, type), enforced by the database itself. A book is a village's (`site`): it
reads, acks and clears that village's alarms only, so villages can share one records DB; a book without a site
is the county's, reading every village's. A rule that keeps firing updates its alarm;
a worse severity un-acknowledges it (the situation that was acked is not the one now). Clearing and acking are
independent (ThingsBoard's model): a cleared alarm nobody acked still waits for an ack. Every change writes an
audit event in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from orchard import i18n
from orchard.models import SEVERITIES, Alarm, AlarmAction, AlarmEvent, Signal, Silence
from orchard.records import Records
from orchard.records.schema import alarm_events as E
from orchard.records.schema import alarms as A
from orchard.records.schema import evidence as V
from orchard.records.schema import silences as S
from orchard.records.snapshots import SnapshotRef
from orchard.site import Site


class Outcome(StrEnum):
    """What firing a signal did to its alarm."""

    RAISED = "raised"  # a new alarm
    WORSE = "worse"  # higher than this alarm has ever been: people are told again (and it un-acknowledges it)
    RESTORED = "restored"  # back up to a level this alarm already had: people were told of it, no new message
    BETTER = "better"  # a lower severity
    SAME = "same"  # nothing changed
SYSTEM = "system"


class AlarmNotFound(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class AlarmText:
    """What a person reads about an alarm, in their language: what, where, how bad, and what to do."""

    severity: str
    title: str
    text: str
    advice: str


def alarm_text(alarm: Alarm | Signal, lang: str, site: Site) -> AlarmText:
    params = {**alarm.details, "plot_name": site.plot_label(alarm.plot, lang) if alarm.plot else ""}
    # a detail named <x>_key holds a message key: the text gets {x} in the reader's language
    params |= {k.removesuffix("_key"): i18n.t(str(v), lang) for k, v in alarm.details.items() if k.endswith("_key")}
    # a detail `advice` names a variant of the rule's advice (Psa's by growth stage: alarm.psa_risk_<x>_advice)
    advice = f"alarm.{alarm.type}_{alarm.details['advice']}_advice" if alarm.details.get("advice") else \
        f"alarm.{alarm.type}_advice"
    return AlarmText(i18n.t(f"alarm.severity_{alarm.severity}", lang), i18n.t(f"alarm.{alarm.type}", lang),
                     i18n.t(alarm.message, lang, **params), i18n.t(advice, lang))


def _alarm(r: Any) -> Alarm:
    return Alarm(r.id, r.site, r.source, r.type, r.severity, r.plot, r.device, r.started_ns, r.updated_ns,
                 r.cleared_ns, r.acked_ns, r.acked_by, r.assignee, r.message, orjson.loads(r.details))


def _peak(conn: Connection, alarm_id: int) -> str:
    """The highest severity an alarm has had: what its people were told of (its raise and its rises)."""
    rows = conn.execute(select(E.c.action, E.c.detail).where(
        E.c.alarm_id == alarm_id, E.c.action.in_([AlarmAction.RAISED, AlarmAction.SEVERITY]))).all()
    levels = [str(orjson.loads(d).get("severity" if a == AlarmAction.RAISED else "new", "info")) for a, d in rows]
    return max(levels, key=lambda x: SEVERITIES.index(x) if x in SEVERITIES else -1, default="info")


def _log(conn: Connection, alarm_id: int, now_ns: int, actor: str, action: AlarmAction, **detail: object) -> None:
    conn.execute(insert(E).values(alarm_id=alarm_id, time_ns=now_ns, actor=actor, action=action,
                                  detail=orjson.dumps(detail).decode()))


class AlarmBook:
    def __init__(self, records: Records, site: str | None = None) -> None:
        self.engine = records.engine
        self.site = site  # the village whose alarms these are; None: every village's (the county's view)

    def _mine(self, stmt: Any) -> Any:
        return stmt.where(A.c.site == self.site) if self.site is not None else stmt

    # -- what rules do ----------------------------------------------------------------------------------------
    def fire(self, s: Signal, now_ns: int) -> tuple[Alarm, Outcome]:
        """Raise the alarm of (source, type), or update the active one."""
        if s.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {s.severity!r}")
        if self.site is not None and s.site != self.site:
            raise ValueError(f"a signal of {s.site!r} in the alarm book of {self.site!r}")
        for _ in range(3):  # two analytics processes racing for the same new alarm: the loser updates
            try:
                with self.engine.begin() as conn:
                    return self._fire(conn, s, now_ns)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not raise or update alarm {s.source}/{s.type}")

    def _fire(self, conn: Connection, s: Signal, now_ns: int) -> tuple[Alarm, Outcome]:
        details = orjson.dumps(dict(s.details), default=str).decode()
        row = conn.execute(select(A).where(A.c.site == s.site, A.c.source == s.source, A.c.type == s.type,
                                           A.c.cleared_ns.is_(None))).first()
        if row is None:
            key = conn.execute(insert(A).values(
                site=s.site, source=s.source, type=s.type, severity=s.severity, plot=s.plot, device=s.device,
                started_ns=now_ns, updated_ns=now_ns, message=s.message, details=details)).inserted_primary_key
            assert key is not None
            alarm_id = int(key[0])
            _log(conn, alarm_id, now_ns, SYSTEM, AlarmAction.RAISED, severity=s.severity, details=dict(s.details))
            return self._get(conn, alarm_id), Outcome.RAISED
        old, new = SEVERITIES.index(row.severity), SEVERITIES.index(s.severity)
        outcome = Outcome.WORSE if new > old else Outcome.BETTER if new < old else Outcome.SAME
        if outcome is Outcome.WORSE and new <= SEVERITIES.index(_peak(conn, row.id)):
            outcome = Outcome.RESTORED  # a drop and a rise again: nothing people were not told already
        values: dict[str, object] = {"severity": s.severity, "updated_ns": now_ns, "message": s.message,
                                     "details": details}
        if outcome is Outcome.WORSE:
            values |= {"acked_ns": None, "acked_by": None}
        conn.execute(update(A).where(A.c.id == row.id).values(**values))
        if outcome is not Outcome.SAME:
            _log(conn, row.id, now_ns, SYSTEM, AlarmAction.SEVERITY, old=row.severity, new=s.severity,
                 unacked=outcome is Outcome.WORSE and row.acked_ns is not None)
        return self._get(conn, row.id), outcome

    def clear(self, source: str, type_: str, now_ns: int, actor: str = SYSTEM, reason: str = "",
              details: Mapping[str, object] | None = None) -> Alarm | None:
        """Clear the active alarm of (source, type); None when there is none. `details` (a rule's words on how it
        ended: the night's observed minimum, whether the frost came) go into its history."""
        with self.engine.begin() as conn:
            row = conn.execute(self._mine(select(A.c.id).where(A.c.source == source, A.c.type == type_,
                                                               A.c.cleared_ns.is_(None)))).first()
            if row is None:
                return None
            conn.execute(update(A).where(A.c.id == row.id).values(cleared_ns=now_ns, updated_ns=now_ns))
            _log(conn, row.id, now_ns, actor, AlarmAction.CLEARED, reason=reason, **dict(details or {}))
            return self._get(conn, row.id)

    # -- what people do ---------------------------------------------------------------------------------------
    def ack(self, alarm_id: int, user: str, now_ns: int) -> Alarm:
        """Acknowledge; acking twice keeps the first ack (who saw it first is what the center wants to know)."""
        with self.engine.begin() as conn:
            alarm = self._get(conn, alarm_id)
            if alarm.acked:
                return alarm
            conn.execute(update(A).where(A.c.id == alarm_id, A.c.acked_ns.is_(None))
                         .values(acked_ns=now_ns, acked_by=user, updated_ns=now_ns))
            _log(conn, alarm_id, now_ns, user, AlarmAction.ACKED)
            return self._get(conn, alarm_id)

    def assign(self, alarm_id: int, assignee: str | None, actor: str, now_ns: int) -> Alarm:
        with self.engine.begin() as conn:
            self._get(conn, alarm_id)
            conn.execute(update(A).where(A.c.id == alarm_id).values(assignee=assignee, updated_ns=now_ns))
            _log(conn, alarm_id, now_ns, actor, AlarmAction.ASSIGNED, assignee=assignee)
            return self._get(conn, alarm_id)

    def handled(self, alarm_id: int, user: str, now_ns: int, note: str = "") -> Alarm:
        """The person on the plot has dealt with it ("已处理"): acknowledged if it was not, and said so in the
        trail, for the adviser. The alarm itself ends when its rule clears it or the staff close it."""
        alarm = self.ack(alarm_id, user, now_ns)
        with self.engine.begin() as conn:
            _log(conn, alarm_id, now_ns, user, AlarmAction.HANDLED, **({"text": note.strip()[:2000]}
                                                                          if note.strip() else {}))
        return alarm

    def comment(self, alarm_id: int, actor: str, text: str, now_ns: int) -> None:
        text = text.strip()
        if not text:
            raise ValueError("empty comment")
        with self.engine.begin() as conn:
            self._get(conn, alarm_id)
            _log(conn, alarm_id, now_ns, actor, AlarmAction.COMMENTED, text=text[:2000])

    # -- reading ----------------------------------------------------------------------------------------------
    def _get(self, conn: Connection, alarm_id: int) -> Alarm:
        row = conn.execute(self._mine(select(A).where(A.c.id == alarm_id))).first()  # another village's: not found
        if row is None:
            raise AlarmNotFound(alarm_id)
        return _alarm(row)

    def get(self, alarm_id: int) -> Alarm:
        with self.engine.connect() as conn:
            return self._get(conn, alarm_id)

    def active(self, plots: Sequence[str] | None = None) -> list[Alarm]:
        """Active alarms, worst first, then newest."""
        stmt = self._mine(select(A).where(A.c.cleared_ns.is_(None)))
        if plots is not None:
            stmt = stmt.where(A.c.plot.in_(list(plots)))
        with self.engine.connect() as conn:
            found = [_alarm(r) for r in conn.execute(stmt)]
        return sorted(found, key=lambda a: (-SEVERITIES.index(a.severity), -a.started_ns))

    def needing_attention(self) -> list[Alarm]:
        """Active, or cleared but never acknowledged."""
        stmt = self._mine(select(A).where((A.c.cleared_ns.is_(None)) | (A.c.acked_ns.is_(None))))
        with self.engine.connect() as conn:
            return [_alarm(r) for r in conn.execute(stmt.order_by(A.c.started_ns.desc()))]

    def recent(self, days: float, now_ns: int | None = None) -> list[Alarm]:
        """Alarms that started in the last `days`, newest first (for KPIs and history)."""
        since = (now_ns if now_ns is not None else time.time_ns()) - int(days * 86400e9)
        with self.engine.connect() as conn:
            rows = conn.execute(self._mine(select(A).where(A.c.started_ns >= since)).order_by(A.c.started_ns.desc()))
            return [_alarm(r) for r in rows]

    def between(self, start_ns: int, end_ns: int) -> list[Alarm]:
        """Alarms active at some time in [start, end): raised before the end and not cleared before the start,
        oldest first (what a replay of that span compares with)."""
        stmt = self._mine(select(A).where(A.c.started_ns < end_ns, A.c.cleared_ns.is_(None)
                                          | (A.c.cleared_ns >= start_ns))).order_by(A.c.started_ns)
        with self.engine.connect() as conn:
            return [_alarm(r) for r in conn.execute(stmt)]

    def _ours(self, alarm_id: int) -> Any:
        """The condition "this alarm is this book's village's" for a query of a table that names an alarm."""
        return select(A.c.id).where(A.c.id == alarm_id) if self.site is None else \
            select(A.c.id).where(A.c.id == alarm_id, A.c.site == self.site)

    def events(self, alarm_id: int) -> list[AlarmEvent]:
        stmt = select(E).where(E.c.alarm_id.in_(self._ours(alarm_id))).order_by(E.c.time_ns, E.c.id)
        with self.engine.connect() as conn:
            return [AlarmEvent(r.alarm_id, r.time_ns, r.actor, r.action, orjson.loads(r.detail))
                    for r in conn.execute(stmt)]

    # -- silences ---------------------------------------------------------------------------------------------
    def silence(self, *, plot: str | None, device: str | None, rule: str | None, starts_ns: int, ends_ns: int,
                reason: str, created_by: str, now_ns: int) -> int:
        if ends_ns <= starts_ns:
            raise ValueError("a silence must end after it starts")
        if not reason.strip():
            raise ValueError("say why (the reason is shown with every muted alarm)")
        with self.engine.begin() as conn:
            key = conn.execute(insert(S).values(site=self.site, plot=plot, device=device, rule=rule,
                                                starts_ns=starts_ns,
                                                ends_ns=ends_ns, reason=reason.strip(), created_by=created_by,
                                                created_ns=now_ns)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def silences(self, now_ns: int) -> list[Silence]:
        """Silences not yet over (current and planned)."""
        with self.engine.connect() as conn:
            stmt = select(S).where(S.c.ends_ns > now_ns)
            if self.site is not None:  # this village's, and those from before villages shared the DB
                stmt = stmt.where(S.c.site.is_(None) | (S.c.site == self.site))
            rows = conn.execute(stmt.order_by(S.c.starts_ns)).all()
        return [Silence(r.id, r.plot, r.device, r.rule, r.starts_ns, r.ends_ns, r.reason, r.created_by) for r in rows]

    def end_silence(self, silence_id: int, now_ns: int) -> None:
        with self.engine.begin() as conn:
            stmt = update(S).where(S.c.id == silence_id, S.c.ends_ns > now_ns)
            if self.site is not None:
                stmt = stmt.where(S.c.site.is_(None) | (S.c.site == self.site))
            conn.execute(stmt.values(ends_ns=now_ns))

    # -- camera evidence --------------------------------------------------------------------------------------
    def attach(self, alarm_id: int, ref: SnapshotRef, now_ns: int) -> None:
        """Attach a snapshot to an alarm (shown with it, linked from its messages, kept by retention)."""
        with self.engine.begin() as conn:
            self._get(conn, alarm_id)
            if conn.execute(select(V.c.path).where(V.c.alarm_id == alarm_id, V.c.path == ref.path)).first():
                return
            conn.execute(insert(V).values(alarm_id=alarm_id, path=ref.path, camera=ref.camera, time_ns=ref.time_ns,
                                          thumb=ref.thumb))
            _log(conn, alarm_id, now_ns, SYSTEM, AlarmAction.EVIDENCE, camera=ref.camera, path=ref.path,
                 time_ns=ref.time_ns)

    def evidence(self, alarm_id: int) -> list[SnapshotRef]:
        stmt = select(V).where(V.c.alarm_id.in_(self._ours(alarm_id))).order_by(V.c.time_ns)
        with self.engine.connect() as conn:
            return [SnapshotRef(r.camera, r.time_ns, r.path, r.thumb) for r in conn.execute(stmt)]

    def evidence_paths(self) -> set[str]:
        """Every snapshot some alarm holds on to (retention keeps these)."""
        with self.engine.connect() as conn:
            return {r.path for r in conn.execute(select(V.c.path))}
