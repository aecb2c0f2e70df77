"""What a person should do today, worked out from the alarms and work orders (no drawing here: the farmer's home,
dashboard/views/my_orchard.py, and the adviser's day, dashboard/views/my_work.py, show it).

- A plot's state in three words a farmer knows: danger (a major or critical alarm on), watch (a warning or an
  info alarm on), fine.
- The adviser's plots to visit, most urgent first: each active alarm counts by its severity (unacknowledged ones
  double: nobody has looked yet), each overdue work order as much as a major alarm, each other open one a little.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from orchard.models import Alarm
from orchard.records.workorders import OPEN_STATES, WorkOrder

WEIGHT = {"critical": 8.0, "major": 4.0, "warning": 2.0, "info": 1.0}
OVERDUE_ORDER = WEIGHT["major"]
OPEN_ORDER = 0.5
# The next step an adviser takes on a work order with one tap, and which they take: accept, go, resolve.
ADVISER_STEP = {"new": "accepted", "assigned": "accepted", "accepted": "on_site", "on_site": "resolved"}


class PlotState(StrEnum):
    DANGER = "danger"
    WATCH = "watch"
    FINE = "fine"


def plot_state(alarms: Iterable[Alarm]) -> PlotState:
    """The plot's state from its active alarms."""
    levels = {a.severity for a in alarms if a.active}
    if levels & {"critical", "major"}:
        return PlotState.DANGER
    return PlotState.WATCH if levels else PlotState.FINE


def worst_first(alarms: Iterable[Alarm]) -> list[Alarm]:
    """Active alarms first, then by severity, unacknowledged before acknowledged, newest first."""
    return sorted(alarms, key=lambda a: (not a.active, -WEIGHT.get(a.severity, 0), a.acked, -a.started_ns))


@dataclass(frozen=True, slots=True)
class Visit:
    """A plot to go to today and why: its score, its active alarms (worst first) and its open work orders."""

    plot: str
    score: float
    alarms: tuple[Alarm, ...]
    orders: tuple[WorkOrder, ...]
    overdue: int


def visits(plots: Sequence[str], alarms: Iterable[Alarm], orders: Iterable[WorkOrder], now_ns: int) -> list[Visit]:
    """The plots among `plots` with something to do, most urgent first (ties: the plots' own order)."""
    by_plot_alarms: dict[str, list[Alarm]] = {p: [] for p in plots}
    by_plot_orders: dict[str, list[WorkOrder]] = {p: [] for p in plots}
    for a in alarms:
        if a.active and a.plot in by_plot_alarms:
            by_plot_alarms[a.plot].append(a)
    for w in orders:
        if w.state in OPEN_STATES and w.plot in by_plot_orders:
            by_plot_orders[w.plot].append(w)
    out = []
    for p in plots:
        found, open_orders = by_plot_alarms[p], by_plot_orders[p]
        late = sum(1 for w in open_orders if w.overdue(now_ns))
        score = sum(WEIGHT.get(a.severity, 0) * (1 if a.acked else 2) for a in found)
        score += late * OVERDUE_ORDER + (len(open_orders) - late) * OPEN_ORDER
        if score > 0:
            out.append(Visit(p, score, tuple(worst_first(found)), tuple(open_orders), late))
    order = {p: i for i, p in enumerate(plots)}
    return sorted(out, key=lambda v: (-v.score, order[v.plot]))


def due_orders(orders: Iterable[WorkOrder], me: str) -> list[WorkOrder]:
    """The open work orders for `me` (theirs, or nobody's yet) by when they fall due (so the overdue first), those
    without a deadline last."""
    mine = [w for w in orders if w.state in OPEN_STATES and w.assignee in (me, None)]
    return sorted(mine, key=lambda w: (w.due_ns if w.due_ns is not None else 2**63, w.id))
