"""The county's figures per village and town, from the records DB the villages share (the county's view on the
dashboard, dashboard/views/county.py):

- state: red while a crop alarm of major or critical severity is active in the village, yellow while a warning
  is, green otherwise (device-health alarms do not colour a village, as they do not colour a plot);
- the alarms now open, and over the last `days`: median minutes from an alarm's start to its first read (the
  first of its messages opened), to its ack and to its clearing;
- notices: of the people they reached in the village, the share who read them;
- work orders: of those opened in the period, the share closed; those open past their deadline now;
- a ranking the county can act on: red villages first, then the most overdue work orders, the most alarms nobody
  has acknowledged, the lowest notice read rate.

Every figure is counted from the rows; `now_ns` is the caller's clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median

from sqlalchemy import func, select

from orchard.county import County
from orchard.models import DEVICE_TYPES
from orchard.records import Records
from orchard.records.schema import alarms as A
from orchard.records.schema import notice_recipients as NR
from orchard.records.schema import notices as NT
from orchard.records.schema import notifications as N
from orchard.records.schema import work_orders as W

NS = 1_000_000_000
STATE_OF = {"critical": "red", "major": "red", "warning": "yellow"}
STATES = ("red", "yellow", "green")  # worst first


@dataclass(frozen=True, slots=True)
class Figures:
    """One village (or a town: the sum of its villages; medians over all their alarms)."""

    town: str
    village: str  # "" for a town's row
    state: str  # red | yellow | green
    open_alarms: int
    unacked: int  # open now or started in the period, and never acknowledged
    alarms: int  # started in the period
    read_min: float | None  # medians over the period's alarms that were read, acked, cleared
    ack_min: float | None
    clear_min: float | None
    notice_people: int  # recipients of the period's notices in the village
    notice_read: int
    orders: int  # opened in the period
    orders_closed: int
    overdue: int  # open now past their deadline

    @property
    def read_rate(self) -> float | None:
        return self.notice_read / self.notice_people if self.notice_people else None

    @property
    def closure_rate(self) -> float | None:
        return self.orders_closed / self.orders if self.orders else None


@dataclass
class _Acc:
    open_levels: list[str] = field(default_factory=list)
    unacked: int = 0
    alarms: int = 0
    read: list[float] = field(default_factory=list)
    ack: list[float] = field(default_factory=list)
    clear: list[float] = field(default_factory=list)
    notice_people: int = 0
    notice_read: int = 0
    orders: int = 0
    orders_closed: int = 0
    overdue: int = 0


def _med(xs: Sequence[float]) -> float | None:
    return round(float(median(xs)), 1) if xs else None


def _state(levels: Iterable[str]) -> str:
    got = {STATE_OF[s] for s in levels if s in STATE_OF}
    return next((s for s in STATES if s in got), "green")


def _collect(records: Records, county: County, villages: Iterable[str], now_ns: int,
             days: float) -> dict[str, _Acc]:
    """What each village's figures are made of, in the county file's order (one pass over the rows)."""
    wanted = [v for v in county.village_ids if v in set(villages)]
    since = now_ns - int(days * 86400 * NS)
    acc = {v: _Acc() for v in wanted}
    with records.engine.connect() as conn:
        rows = conn.execute(select(A.c.id, A.c.site, A.c.type, A.c.severity, A.c.started_ns, A.c.cleared_ns,
                                   A.c.acked_ns).where(A.c.site.in_(wanted),
                                                       A.c.cleared_ns.is_(None) | (A.c.started_ns >= since))).all()
        ids = [r.id for r in rows if r.started_ns >= since]
        first_read = dict(conn.execute(select(N.c.alarm_id, func.min(N.c.read_ns)).where(
            N.c.alarm_id.in_(ids), N.c.read_ns.is_not(None)).group_by(N.c.alarm_id)).all()) if ids else {}
        for r in rows:
            a = acc[r.site]
            crop = r.type not in DEVICE_TYPES
            if r.cleared_ns is None and crop:
                a.open_levels.append(r.severity)
            if r.acked_ns is None:
                a.unacked += 1
            if r.started_ns >= since:
                a.alarms += 1
                if r.id in first_read:
                    a.read.append((first_read[r.id] - r.started_ns) / 60 / NS)
                if r.acked_ns is not None:
                    a.ack.append((r.acked_ns - r.started_ns) / 60 / NS)
                if r.cleared_ns is not None:
                    a.clear.append((r.cleared_ns - r.started_ns) / 60 / NS)
        for site, total, read in conn.execute(
                select(NR.c.village, func.count(), func.count(NR.c.read_ns)).join(NT, NT.c.id == NR.c.notice_id)
                .where(NR.c.village.in_(wanted), NT.c.created_ns >= since, NT.c.withdrawn_ns.is_(None))
                .group_by(NR.c.village)):
            acc[site].notice_people, acc[site].notice_read = int(total), int(read)
        for w in conn.execute(select(W.c.site, W.c.state, W.c.created_ns, W.c.due_ns).where(W.c.site.in_(wanted))):
            a = acc[w.site]
            if w.created_ns >= since:
                a.orders += 1
                a.orders_closed += w.state == "closed"
            if w.state != "closed" and w.due_ns is not None and w.due_ns < now_ns:
                a.overdue += 1
    return acc


def _figures(town: str, village: str, states: Iterable[str], accs: Sequence[_Acc]) -> Figures:
    def total(attr: str) -> int:
        return sum(getattr(a, attr) for a in accs)

    def pooled(attr: str) -> list[float]:
        return [x for a in accs for x in getattr(a, attr)]

    return Figures(town, village, next((s for s in STATES if s in set(states)), "green"),
                   sum(len(a.open_levels) for a in accs), total("unacked"), total("alarms"), _med(pooled("read")),
                   _med(pooled("ack")), _med(pooled("clear")), total("notice_people"), total("notice_read"),
                   total("orders"), total("orders_closed"), total("overdue"))


def county_figures(records: Records, county: County, villages: Iterable[str], now_ns: int,
                   days: float = 30) -> tuple[list[Figures], list[Figures]]:
    """Per village of `villages` and per town of theirs (sums, its worst state, medians over all its villages'
    alarms together), in the county file's order, from one read of the records."""
    acc = _collect(records, county, villages, now_ns, days)
    per_village = [_figures(county.town_of(v).id, v, [_state(a.open_levels)], [a]) for v, a in acc.items()]
    by_town: dict[str, list[str]] = defaultdict(list)
    for v in acc:
        by_town[county.town_of(v).id].append(v)
    towns = [_figures(t, "", [f.state for f in per_village if f.town == t], [acc[v] for v in vs])
             for t, vs in by_town.items()]
    return per_village, towns


def village_figures(records: Records, county: County, villages: Iterable[str], now_ns: int,
                    days: float = 30) -> list[Figures]:
    """Per village of `villages`, in the county file's order."""
    return county_figures(records, county, villages, now_ns, days)[0]


def ranking(per_village: Sequence[Figures]) -> list[Figures]:
    """Who needs the county first: red, then yellow; then the most overdue work orders, the most alarms nobody
    acknowledged, the lowest notice read rate (none sent counts as read)."""
    return sorted(per_village, key=lambda f: (STATES.index(f.state), -f.overdue, -f.unacked,
                                              f.read_rate if f.read_rate is not None else 1.0, f.village))
