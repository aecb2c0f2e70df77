"""The county's figures (orchard/records/tally.py) from a seeded county of two towns and three villages sharing
one records DB, on SQLite and PostgreSQL: each figure is the count of what was seeded, worked out by hand below."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchard.county import County, CountyInfo, TownEntry, VillageEntry
from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.notices import Audience, Draft, NoticeBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, Role, User
from orchard.records.tally import Figures, county_figures, ranking, village_figures
from orchard.records.workorders import WorkOrders
from orchard.site import SHIPPED, load_site

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 10**9
MIN = 60 * NS
DAY = 86400 * NS
NOW = 1_780_000_000 * NS
COUNTY = County(CountyInfo(id="cangxi", name="苍溪县"),
                (TownEntry(id="yongning", name="永宁镇",
                           villages=(VillageEntry(id="sunzigou"), VillageEntry(id="hexi"))),
                 TownEntry(id="wenchang", name="文昌镇", villages=(VillageEntry(id="qiaoxi"),))),
                {v: SITE for v in ("sunzigou", "hexi", "qiaoxi")})


def signal(site: str, plot: str, type_: str, severity: str) -> Signal:
    return Signal(site, f"plot:{plot}", type_, severity, f"alarm.{type_}_text", {}, plot=plot)


@pytest.fixture
def seeded(records: Records, tmp_path: Path) -> Records:
    """sunzigou: a critical frost now open, read after 4 min, acked after 10; a warning 3 days ago, read after
    20 min, acked after 30, cleared after 120; an old alarm 40 days ago (outside the period). One work order open
    past its deadline, one closed.
    hexi: a warning open, never read or acked; a device alarm (does not colour the village). Notice: 3 of its 4
    people read it. One work order opened and closed.
    qiaoxi: nothing open; one notice to its 2 people, nobody read."""
    sun, hexi = AlarmBook(records, "sunzigou"), AlarmBook(records, "hexi")
    outbox = Outbox(records)
    frost, _ = sun.fire(signal("sunzigou", "p01", "spring_frost", "critical"), NOW - 60 * MIN)
    (n1,) = outbox.queue(frost.id, [("wang", "inbox")], 0, "alarm", NOW - 60 * MIN)
    outbox.read(n1, NOW - 56 * MIN)
    (n2,) = outbox.queue(frost.id, [("li", "inbox")], 1, "alarm", NOW - 55 * MIN)
    outbox.read(n2, NOW - 40 * MIN)  # a later read: the first one counts
    sun.ack(frost.id, "wang", NOW - 50 * MIN)
    t = NOW - 3 * DAY
    psa, _ = sun.fire(signal("sunzigou", "p02", "psa_risk", "warning"), t)
    (n3,) = outbox.queue(psa.id, [("wang", "inbox")], 0, "alarm", t)
    outbox.read(n3, t + 20 * MIN)
    sun.ack(psa.id, "wang", t + 30 * MIN)
    sun.clear("plot:p02", "psa_risk", t + 120 * MIN)
    old, _ = sun.fire(signal("sunzigou", "p03", "heat", "major"), NOW - 40 * DAY)
    sun.ack(old.id, "wang", NOW - 40 * DAY + MIN)
    sun.clear("plot:p03", "heat", NOW - 40 * DAY + 60 * MIN)
    hexi.fire(signal("hexi", "p01", "drought", "warning"), NOW - 2 * DAY)
    hexi.fire(Signal("hexi", "device:ws-p01", "device_offline", "major", "alarm.device_offline_text", {},
                     plot="p01", device="ws-p01"), NOW - DAY)
    photos = Path(records.engine.url.database or "/tmp").parent / "photos"
    sun_orders, hexi_orders = WorkOrders(records, photos, site="sunzigou"), WorkOrders(records, photos, site="hexi")
    sun_orders.open(plot="p01", title="霜冻巡查", created_by="system", now_ns=NOW - 2 * DAY)  # due in hours: overdue
    done = sun_orders.open(plot="p02", title="喷药", created_by="system", now_ns=NOW - DAY, assignee="li")
    sun_orders.move(done.id, "closed", "zhao", NOW - DAY + 60 * MIN, by_center=True)
    h = hexi_orders.open(plot="p01", title="补水", created_by="system", now_ns=NOW - DAY, assignee="li")
    hexi_orders.move(h.id, "closed", "zhao", NOW - DAY + 30 * MIN, by_center=True)
    people = People(records)
    people.upsert(User("county-1", "县农业局", Role.COUNTY))
    for v, n in (("hexi", 4), ("qiaoxi", 2)):
        for k in range(n):
            people.upsert(User(f"{v}-{k}", f"{v}{k}", Role.FARMER, village=v))
    book = NoticeBook(records, COUNTY)
    writer = people.get("county-1")
    assert writer is not None
    to_hexi = book.send(writer, Draft("河西通知", audience=Audience(villages=("hexi",))), NOW - DAY)
    for k in range(3):
        book.read(to_hexi.id, f"hexi-{k}", NOW - DAY + (k + 1) * MIN)
    book.send(writer, Draft("桥溪通知", audience=Audience(villages=("qiaoxi",))), NOW - DAY)
    return records


def test_the_county_figures_agree_with_what_was_seeded(seeded: Records) -> None:
    got = village_figures(seeded, COUNTY, ["sunzigou", "hexi", "qiaoxi"], NOW)
    assert got == [
        Figures("yongning", "sunzigou", "red", open_alarms=1, unacked=0, alarms=2, read_min=12.0, ack_min=20.0,
                clear_min=120.0, notice_people=0, notice_read=0, orders=2, orders_closed=1, overdue=1),
        Figures("yongning", "hexi", "yellow", open_alarms=1, unacked=2, alarms=2, read_min=None, ack_min=None,
                clear_min=None, notice_people=4, notice_read=3, orders=1, orders_closed=1, overdue=0),
        Figures("wenchang", "qiaoxi", "green", open_alarms=0, unacked=0, alarms=0, read_min=None, ack_min=None,
                clear_min=None, notice_people=2, notice_read=0, orders=0, orders_closed=0, overdue=0),
    ]
    # read: 4 and 20 min -> 12; ack: 10 and 30 -> 20; the 40-day-old alarm is outside the 30-day period
    assert got[1].read_rate == 0.75 and got[0].closure_rate == 0.5 and got[2].read_rate == 0.0
    _, towns = county_figures(seeded, COUNTY, ["sunzigou", "hexi", "qiaoxi"], NOW)
    assert [(t.town, t.state, t.open_alarms, t.unacked, t.alarms, t.read_min, t.notice_people, t.notice_read,
             t.orders, t.orders_closed, t.overdue) for t in towns] == [
        ("yongning", "red", 2, 2, 4, 12.0, 4, 3, 3, 2, 1), ("wenchang", "green", 0, 0, 0, None, 2, 0, 0, 0, 0)]
    assert [f.village for f in ranking(got)] == ["sunzigou", "hexi", "qiaoxi"]


def test_a_tier_gets_only_its_villages_and_the_period_counts(seeded: Records) -> None:
    (only,) = village_figures(seeded, COUNTY, ["qiaoxi"], NOW)
    assert only.village == "qiaoxi"
    (sun,) = village_figures(seeded, COUNTY, ["sunzigou"], NOW, days=50)
    assert (sun.alarms, sun.clear_min) == (3, 90.0)  # with the heat alarm of 40 days ago: cleared 120 and 60 min


def test_the_ranking_puts_the_neglected_first() -> None:
    def f(v: str, state: str, overdue: int = 0, unacked: int = 0, people: int = 0, read: int = 0) -> Figures:
        return Figures("t", v, state, 0, unacked, 0, None, None, None, people, read, 0, 0, overdue)

    villages = [f("a", "green", people=10, read=2), f("b", "yellow"), f("c", "green", overdue=2),
                f("d", "green", unacked=3), f("e", "red"), f("g", "green", people=10, read=9)]
    assert [x.village for x in ranking(villages)] == ["e", "b", "c", "d", "a", "g"]
