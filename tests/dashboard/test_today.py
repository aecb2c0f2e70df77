"""What a farmer and an adviser are told to do today (dashboard/today.py), table-driven."""

from __future__ import annotations

import pytest

from dashboard.today import PlotState, due_orders, plot_state, visits, worst_first
from orchard.models import Alarm
from orchard.records.workorders import WorkOrder

NS = 1_000_000_000
NOW = 1_800_000_000 * NS


def alarm(id_: int, plot: str, severity: str, *, acked: bool = False, cleared: bool = False,
          started_min: int = 0) -> Alarm:
    started = NOW - started_min * 60 * NS
    return Alarm(id_, "s", f"plot:{plot}", "spring_frost", severity, plot, None, started, started,  # type: ignore[arg-type]
                 NOW if cleared else None, NOW if acked else None, "wang" if acked else None, None, "m", {})


def order(id_: int, plot: str, state: str = "assigned", *, assignee: str | None = "li",
          due_min: int | None = 60) -> WorkOrder:
    return WorkOrder(id_, None, plot, f"wo{id_}", "", "manual", state, assignee, "x", NOW, NOW,
                     None if due_min is None else NOW + due_min * 60 * NS, None)


@pytest.mark.parametrize(("alarms", "state"), [
    ([], PlotState.FINE),
    ([alarm(1, "p1", "warning")], PlotState.WATCH),
    ([alarm(1, "p1", "info")], PlotState.WATCH),
    ([alarm(1, "p1", "warning"), alarm(2, "p1", "major")], PlotState.DANGER),
    ([alarm(1, "p1", "critical", acked=True)], PlotState.DANGER),  # acknowledged is not over
    ([alarm(1, "p1", "critical", cleared=True)], PlotState.FINE),  # cleared is over
], ids=["none", "warning", "info", "major", "acked critical", "cleared critical"])
def test_plot_state(alarms: list[Alarm], state: PlotState) -> None:
    assert plot_state(alarms) is state


def test_worst_first_puts_active_severe_unacked_new_first() -> None:
    got = worst_first([alarm(1, "p", "warning"), alarm(2, "p", "critical", acked=True),
                       alarm(3, "p", "critical"), alarm(4, "p", "critical", started_min=30),
                       alarm(5, "p", "critical", cleared=True)])
    assert [a.id for a in got] == [3, 4, 2, 1, 5]


@pytest.mark.parametrize(("alarms", "orders", "expected"), [
    ([], [], []),
    ([alarm(1, "p2", "warning")], [], ["p2"]),
    # an unacknowledged warning (2 x 2) outweighs an acknowledged one on another plot (2)
    ([alarm(1, "p1", "warning", acked=True), alarm(2, "p3", "warning")], [], ["p3", "p1"]),
    # an overdue work order weighs like a major alarm; an open one a little
    ([alarm(1, "p1", "warning", acked=True)], [order(1, "p2", due_min=-5), order(2, "p3")], ["p2", "p1", "p3"]),
    # cleared alarms and closed orders send nobody anywhere; plots not covered are not listed
    ([alarm(1, "p1", "critical", cleared=True), alarm(2, "p9", "critical")], [order(1, "p2", "closed")], []),
    # ties keep the plots' own order
    ([alarm(1, "p3", "warning"), alarm(2, "p1", "warning")], [], ["p1", "p3"]),
], ids=["nothing", "one", "unacked first", "orders", "nothing open", "ties"])
def test_visits_most_urgent_first(alarms: list[Alarm], orders: list[WorkOrder], expected: list[str]) -> None:
    assert [v.plot for v in visits(["p1", "p2", "p3"], alarms, orders, NOW)] == expected


def test_visit_counts_its_overdue_orders() -> None:
    (trip,) = visits(["p1"], [], [order(1, "p1", due_min=-1), order(2, "p1", due_min=10)], NOW)
    assert (trip.overdue, len(trip.orders), trip.score) == (1, 2, 4.5)


def test_due_orders_are_mine_or_nobodys_overdue_first() -> None:
    got = due_orders([order(1, "p1", due_min=120), order(2, "p1", assignee="zhao"), order(3, "p1", due_min=-10),
                      order(4, "p1", "new", assignee=None, due_min=30), order(5, "p1", "closed"),
                      order(6, "p1", due_min=None)], "li")
    assert [w.id for w in got] == [3, 4, 1, 6]
