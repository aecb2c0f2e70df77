"""Work orders (工单): opened from an alarm (by hand, or by the analytics service for severe alarms) or from a
farmer's photo report, then followed to closure:

    new -> assigned -> accepted -> on_site -> resolved -> follow_up -> closed

Each state has an SLA; a work order past it is overdue (the analytics service raises an alarm for the command
center). Resolved or followed-up orders may go back on site when the problem is not gone; the command center
may close any order with a note. Every step, note and photo is kept.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from orchard.models import Alarm
from orchard.records import Records
from orchard.records.outbox import Notification
from orchard.records.schema import work_order_events as WE
from orchard.records.schema import work_orders as W

STATES = ("new", "assigned", "accepted", "on_site", "resolved", "follow_up", "closed")
OPEN_STATES = STATES[:-1]
NEXT = {s: STATES[i + 1] for i, s in enumerate(STATES[:-1])}
BACK = {"resolved": "on_site", "follow_up": "on_site"}  # the problem is not gone: back to the orchard
# Minutes a work order may stay in each state before it is overdue.
SLA_MIN = {"new": 30, "assigned": 120, "accepted": 24 * 60, "on_site": 48 * 60, "resolved": 7 * 24 * 60,
           "follow_up": 3 * 24 * 60}
NS = 1_000_000_000


class WorkOrderError(ValueError):
    """A step the work order cannot take; `key` is the i18n key of the explanation."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: int
    alarm_id: int | None
    plot: str | None
    title: str
    description: str
    source: str
    state: str
    assignee: str | None
    created_by: str
    created_ns: int
    state_since_ns: int
    due_ns: int | None
    closed_ns: int | None
    site: str | None = None  # the village; None: from before villages shared a records DB

    def overdue(self, now_ns: int) -> bool:
        return self.due_ns is not None and now_ns > self.due_ns


@dataclass(frozen=True, slots=True)
class WorkOrderEvent:
    work_order_id: int
    time_ns: int
    actor: str
    from_state: str | None
    to_state: str | None
    note: str
    photo: str | None
    photo_kind: str | None


def _wo(r: object) -> WorkOrder:
    return WorkOrder(*(getattr(r, c.name) for c in W.columns))


class WorkOrders:
    def __init__(self, records: Records, photos_dir: Path, sla_min: dict[str, float] | None = None,
                 site: str | None = None) -> None:
        self.engine = records.engine
        self.site = site  # the village whose work orders these are (and those of no village); None: every one's
        self.photos_dir = photos_dir
        self.sla_min = {**SLA_MIN, **(sla_min or {})}

    def _mine(self, stmt: Any) -> Any:
        return stmt.where(W.c.site.is_(None) | (W.c.site == self.site)) if self.site is not None else stmt

    def _due(self, state: str, now_ns: int) -> int | None:
        return None if state == "closed" else now_ns + int(self.sla_min[state] * 60 * NS)

    def _photo(self, wo_id: int, photo: bytes | None, kind: str | None, now_ns: int) -> str | None:
        if photo is None:
            return None
        folder = self.photos_dir / str(wo_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{now_ns}-{kind or 'photo'}.jpg"
        path.write_bytes(photo)
        return str(path.relative_to(self.photos_dir))

    def open(self, *, plot: str | None, title: str, created_by: str, now_ns: int, source: str = "manual",
             description: str = "", alarm_id: int | None = None, assignee: str | None = None,
             photo: bytes | None = None) -> WorkOrder:
        if not title.strip():
            raise WorkOrderError("wo.err_title")
        state = "assigned" if assignee else "new"
        with self.engine.begin() as conn:
            key = conn.execute(insert(W).values(
                site=self.site, alarm_id=alarm_id, plot=plot, title=title.strip(), description=description.strip(),
                source=source,
                state=state, assignee=assignee, created_by=created_by, created_ns=now_ns, state_since_ns=now_ns,
                due_ns=self._due(state, now_ns))).inserted_primary_key
            assert key is not None
            wo_id = int(key[0])
            path = self._photo(wo_id, photo, "report", now_ns)
            conn.execute(insert(WE).values(work_order_id=wo_id, time_ns=now_ns, actor=created_by, from_state=None,
                                           to_state=state, note=description.strip(), photo=path,
                                           photo_kind="report" if path else None))
        return self.get(wo_id)

    def move(self, wo_id: int, to_state: str, actor: str, now_ns: int, *, note: str = "",
             photo: bytes | None = None, photo_kind: str | None = None, by_center: bool = False) -> WorkOrder:
        wo = self.get(wo_id)
        allowed = {NEXT.get(wo.state), BACK.get(wo.state)} | ({"closed"} if by_center else set())
        if wo.state == "closed" or to_state not in allowed:
            raise WorkOrderError("wo.err_step")
        if to_state == "assigned" and not wo.assignee:
            raise WorkOrderError("wo.err_assignee")
        if to_state in ("resolved",) and not (photo or note.strip()):
            raise WorkOrderError("wo.err_evidence")  # say or show what was done
        with self.engine.begin() as conn:
            conn.execute(update(W).where(W.c.id == wo_id).values(
                state=to_state, state_since_ns=now_ns, due_ns=self._due(to_state, now_ns),
                closed_ns=now_ns if to_state == "closed" else None))
            path = self._photo(wo_id, photo, photo_kind, now_ns)
            conn.execute(insert(WE).values(work_order_id=wo_id, time_ns=now_ns, actor=actor, from_state=wo.state,
                                           to_state=to_state, note=note.strip(), photo=path,
                                           photo_kind=photo_kind if path else None))
        return self.get(wo_id)

    def assign(self, wo_id: int, assignee: str, actor: str, now_ns: int) -> WorkOrder:
        wo = self.get(wo_id)
        if wo.state == "closed":
            raise WorkOrderError("wo.err_step")
        state = "assigned" if wo.state == "new" else wo.state
        with self.engine.begin() as conn:
            values: dict[str, object] = {"assignee": assignee}
            if state != wo.state:
                values |= {"state": state, "state_since_ns": now_ns, "due_ns": self._due(state, now_ns)}
            conn.execute(update(W).where(W.c.id == wo_id).values(**values))
            conn.execute(insert(WE).values(work_order_id=wo_id, time_ns=now_ns, actor=actor, from_state=wo.state,
                                           to_state=state, note=f"→ {assignee}"))
        return self.get(wo_id)

    def note(self, wo_id: int, actor: str, text: str, now_ns: int, photo: bytes | None = None,
             photo_kind: str | None = None) -> None:
        if not text.strip() and photo is None:
            raise WorkOrderError("wo.err_empty")
        self.get(wo_id)
        with self.engine.begin() as conn:
            path = self._photo(wo_id, photo, photo_kind, now_ns)
            conn.execute(insert(WE).values(work_order_id=wo_id, time_ns=now_ns, actor=actor, note=text.strip(),
                                           photo=path, photo_kind=photo_kind if path else None))

    # -- reading ----------------------------------------------------------------------------------------------
    def get(self, wo_id: int) -> WorkOrder:
        with self.engine.connect() as conn:
            row = conn.execute(self._mine(select(W).where(W.c.id == wo_id))).first()
        if row is None:  # another village's: as if there were none
            raise WorkOrderError("wo.err_missing")
        return _wo(row)

    def find(self, *, states: Sequence[str] | None = None, plots: Sequence[str] | None = None,
             assignee: str | None = None) -> list[WorkOrder]:
        stmt = self._mine(select(W))
        if states is not None:
            stmt = stmt.where(W.c.state.in_(list(states)))
        if plots is not None:
            stmt = stmt.where(W.c.plot.in_(list(plots)))
        if assignee is not None:
            stmt = stmt.where(W.c.assignee == assignee)
        with self.engine.connect() as conn:
            return [_wo(r) for r in conn.execute(stmt.order_by(W.c.created_ns.desc()))]

    def for_alarm(self, alarm_id: int) -> list[WorkOrder]:
        with self.engine.connect() as conn:
            return [_wo(r) for r in conn.execute(self._mine(select(W).where(W.c.alarm_id == alarm_id)))]

    def overdue(self, now_ns: int) -> list[WorkOrder]:
        with self.engine.connect() as conn:
            rows = conn.execute(self._mine(select(W).where(W.c.state != "closed", W.c.due_ns < now_ns))).all()
        return [_wo(r) for r in rows]

    def events(self, wo_id: int) -> list[WorkOrderEvent]:
        stmt = (select(WE).where(WE.c.work_order_id.in_(self._mine(select(W.c.id).where(W.c.id == wo_id))))
                .order_by(WE.c.time_ns, WE.c.id))
        with self.engine.connect() as conn:
            return [WorkOrderEvent(r.work_order_id, r.time_ns, r.actor, r.from_state, r.to_state, r.note, r.photo,
                                   r.photo_kind) for r in conn.execute(stmt)]

    def photo_path(self, relative: str) -> Path:
        path = (self.photos_dir / relative).resolve()
        if self.photos_dir.resolve() not in path.parents:
            raise WorkOrderError("wo.err_missing")
        return path


@dataclass(frozen=True, slots=True)
class Kpi:
    """One adviser's month: medians in minutes, rates as fractions; None when there was nothing to measure."""

    adviser: str
    month: str  # "2026-03"
    alarms: int
    first_read_min: float | None
    ack_min: float | None
    work_orders: int
    close_min: float | None
    closure_rate: float | None
    overdue_rate: float | None


def kpis(alarms: Sequence[Alarm], notifications: Sequence[Notification], orders: Sequence[WorkOrder],
         advisers_of_plot: dict[str, list[str]], tz: ZoneInfo, now_ns: int) -> list[Kpi]:
    """Time to first read, to ack and to close, closure and overdue rates, per adviser (by the plots they cover)
    and month (of the alarm's or the order's start)."""
    def month(t: int) -> str:
        return datetime.fromtimestamp(t / NS, tz).strftime("%Y-%m")

    first_read: dict[int, int] = {}
    for n in notifications:
        if n.read_ns is not None:
            first_read[n.alarm_id] = min(first_read.get(n.alarm_id, n.read_ns), n.read_ns)
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}

    def cell(adviser: str, m: str) -> dict[str, list[float]]:
        return cells.setdefault((adviser, m), {"alarms": [], "read": [], "ack": [], "wo": [], "close": [],
                                               "closed": [], "overdue": []})

    for a in alarms:
        for adviser in advisers_of_plot.get(a.plot or "", []):
            c = cell(adviser, month(a.started_ns))
            c["alarms"].append(1)
            if a.id in first_read:
                c["read"].append((first_read[a.id] - a.started_ns) / NS / 60)
            if a.acked_ns is not None:
                c["ack"].append((a.acked_ns - a.started_ns) / NS / 60)
    for wo in orders:
        for adviser in advisers_of_plot.get(wo.plot or "", []):
            c = cell(adviser, month(wo.created_ns))
            c["wo"].append(1)
            c["closed"].append(1.0 if wo.closed_ns is not None else 0.0)
            c["overdue"].append(1.0 if wo.overdue(now_ns) else 0.0)
            if wo.closed_ns is not None:
                c["close"].append((wo.closed_ns - wo.created_ns) / NS / 60)

    def med(xs: list[float]) -> float | None:
        return round(statistics.median(xs), 1) if xs else None

    def rate(xs: list[float]) -> float | None:
        return round(sum(xs) / len(xs), 3) if xs else None

    return [Kpi(adv, m, len(c["alarms"]), med(c["read"]), med(c["ack"]), len(c["wo"]), med(c["close"]),
                rate(c["closed"]), rate(c["overdue"])) for (adv, m), c in sorted(cells.items())]
