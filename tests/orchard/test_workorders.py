"""Work orders on SQLite and PostgreSQL: the whole path with photos, the steps that are refused, SLA overdue as an
alarm for the command center, KPIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchard.models import Alarm
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Notification
from orchard.records.workorders import WorkOrderError, WorkOrders, kpis
from orchard.site import SHIPPED, load_site

NS = 10**9
MIN = 60 * NS
T0 = 1_773_500_000 * NS
SITE = load_site(SHIPPED / "sunzigou" / "site.toml")


@pytest.fixture
def orders(records: Records, tmp_path: Path) -> WorkOrders:
    return WorkOrders(records, tmp_path / "photos")


def test_from_report_to_closed_with_photos(orders: WorkOrders) -> None:
    wo = orders.open(plot="p01", title="叶片有褐色病斑", created_by="farmer-p01", now_ns=T0, source="photo",
                     description="东头三行", photo=b"\xff\xd8jpeg-report")
    assert (wo.state, wo.due_ns) == ("new", T0 + 30 * MIN)
    with pytest.raises(WorkOrderError, match="assignee"):
        orders.move(wo.id, "assigned", "center", T0 + MIN)
    wo = orders.assign(wo.id, "adviser", "center", T0 + 2 * MIN)
    assert wo.state == "assigned" and wo.due_ns == T0 + 2 * MIN + 120 * MIN
    for step, t in (("accepted", 10), ("on_site", 60)):
        wo = orders.move(wo.id, step, "adviser", T0 + t * MIN)
    with pytest.raises(WorkOrderError, match="evidence"):
        orders.move(wo.id, "resolved", "adviser", T0 + 90 * MIN)
    orders.move(wo.id, "resolved", "adviser", T0 + 90 * MIN, note="喷施春雷霉素", photo=b"after", photo_kind="after")
    orders.move(wo.id, "on_site", "adviser", T0 + 2 * 24 * 60 * MIN, note="复发")  # not gone: back on site
    orders.move(wo.id, "resolved", "adviser", T0 + 3 * 24 * 60 * MIN, note="剪除病枝")
    orders.move(wo.id, "follow_up", "adviser", T0 + 5 * 24 * 60 * MIN)
    wo = orders.move(wo.id, "closed", "adviser", T0 + 6 * 24 * 60 * MIN)
    assert (wo.state, wo.due_ns, wo.closed_ns) == ("closed", None, T0 + 6 * 24 * 60 * MIN)
    with pytest.raises(WorkOrderError):
        orders.move(wo.id, "on_site", "adviser", T0 + 7 * 24 * 60 * MIN)
    trail = orders.events(wo.id)
    assert [e.to_state for e in trail] == ["new", "assigned", "accepted", "on_site", "resolved", "on_site",
                                           "resolved", "follow_up", "closed"]
    photos = [(e.photo_kind, orders.photo_path(e.photo).read_bytes()) for e in trail if e.photo]
    assert photos == [("report", b"\xff\xd8jpeg-report"), ("after", b"after")]


@pytest.mark.parametrize(("state", "to", "by_center", "ok"), [
    ("new", "accepted", False, False),  # no skipping
    ("new", "closed", False, False),
    ("new", "closed", True, True),  # the command center may close anything, with its note
    ("assigned", "new", False, False),
])
def test_refused_steps(orders: WorkOrders, state: str, to: str, by_center: bool, ok: bool) -> None:
    wo = orders.open(plot="p02", title="检查", created_by="center", now_ns=T0,
                     assignee="adviser" if state == "assigned" else None)
    if ok:
        assert orders.move(wo.id, to, "center", T0 + MIN, by_center=by_center, note="重复").state == to
    else:
        with pytest.raises(WorkOrderError):
            orders.move(wo.id, to, "center", T0 + MIN, by_center=by_center)


def test_photo_paths_cannot_leave_the_photo_folder(orders: WorkOrders) -> None:
    with pytest.raises(WorkOrderError):
        orders.photo_path("../../records.sqlite")


def test_overdue_work_order_raises_and_clears_an_alarm(records: Records, tmp_path: Path) -> None:
    from analytics.engine import Engine
    from orchard.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    orders, book = WorkOrders(records, tmp_path / "photos"), AlarmBook(records)
    engine = Engine(SITE.model_copy(update={"devices": (), "cameras": ()}), store, records, book, orders=orders)
    wo = orders.open(plot="p03", title="排水", created_by="center", now_ns=T0)
    engine.cycle(T0 + 29 * MIN)
    assert [a.type for a in book.active()] == []
    engine.cycle(T0 + 31 * MIN)
    (late,) = book.active()
    assert (late.type, late.source, late.details["state"]) == ("work_order_overdue", f"work_order:{wo.id}", "new")
    orders.assign(wo.id, "adviser", "center", T0 + 32 * MIN)
    engine.cycle(T0 + 33 * MIN)
    assert book.active() == []


def test_kpis_per_adviser_and_month() -> None:
    def alarm(i: int, start_min: int, ack_min: int | None) -> Alarm:
        return Alarm(i, "s", "plot:p01", "spring_frost", "critical", "p01", None, T0 + start_min * MIN, T0, None,
                     None if ack_min is None else T0 + ack_min * MIN, "x", None, "m", {})

    def read(alarm_id: int, at_min: int) -> Notification:
        return Notification(alarm_id, alarm_id, "wang", "dingtalk", 0, "alarm", "sent", 1, T0, None, T0, T0,
                            T0 + at_min * MIN)

    from orchard.records.workorders import WorkOrder

    done = WorkOrder(1, 1, "p01", "t", "", "alarm", "closed", "li", "system", T0, T0, None, T0 + 600 * MIN)
    late = WorkOrder(2, 2, "p01", "t", "", "alarm", "new", None, "system", T0, T0, T0 + 30 * MIN, None)
    rows = kpis([alarm(1, 0, 6), alarm(2, 10, None)], [read(1, 2), read(1, 1), read(2, 14)], [done, late],
                {"p01": ["li"]}, SITE.tz, T0 + 60 * MIN)
    (k,) = rows
    assert (k.adviser, k.alarms, k.first_read_min, k.ack_min) == ("li", 2, 2.5, 6.0)  # reads after 1 and 4 min
    assert (k.work_orders, k.close_min, k.closure_rate, k.overdue_rate) == (2, 600.0, 0.5, 0.5)


def test_villages_sharing_one_records_db_see_their_own_work_orders(records: Records, tmp_path: Path) -> None:
    sun = WorkOrders(records, tmp_path, site="sunzigou")
    hexi = WorkOrders(records, tmp_path, site="hexi")
    mine = sun.open(plot="p01", title="大湾霜冻巡查", created_by="system", now_ns=NS)
    theirs = hexi.open(plot="p01", title="河西霜冻巡查", created_by="system", now_ns=NS)
    assert [w.id for w in sun.find()] == [mine.id] and [w.id for w in hexi.find(plots=["p01"])] == [theirs.id]
    assert mine.site == "sunzigou"
    with pytest.raises(WorkOrderError):
        sun.move(theirs.id, "accepted", "li", 2 * NS)  # another village's order, by its id: as if there were none
    assert sun.events(theirs.id) == [] and len(hexi.events(theirs.id)) == 1
    assert [w.id for w in sun.overdue(10**15)] == [mine.id]
    assert {w.id for w in WorkOrders(records, tmp_path).find()} == {mine.id, theirs.id}  # the county's view
