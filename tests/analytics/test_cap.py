"""Official weather warnings in CAP 1.2 (tests/fixtures/cap: a county's rainstorm warning raised from yellow to
orange and cancelled, a neighbouring city's gale warning, a frost warning for a circle around the valley): read,
matched to plots by polygon, circle or administrative code, and turned into alarms with their level."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import httpx
import pytest

from analytics.cap import Area, CapError, Level, MsgType, Warning, parse
from analytics.cap.feed import WarningFeed
from analytics.engine import Engine
from analytics.rules import load
from orchard.grouping import group_alarms
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.store import open_store
from tests.analytics.test_rules import SITE, at

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cap"
NS = 10**9
PLOT = SITE.plot_by_id["p01"]


def cap(name: str) -> bytes:
    return (FIXTURES / f"{name}.xml").read_bytes()


def test_a_cap_alert_is_read_in_the_readers_language() -> None:
    w = parse(cap("cangxi-rainstorm-yellow"))
    assert (w.identifier, w.msg_type, w.event, w.level) == ("51082441600000_20270720140000", MsgType.ALERT, "暴雨",
                                                            Level.YELLOW)
    assert w.sender_name == "苍溪县气象台" and w.headline == "苍溪县气象台发布暴雨黄色预警[III级/较重]"
    assert (w.onset_ns, w.expires_ns) == (at("2027-07-20T14:00"), at("2027-07-21T14:00"))
    (area,) = w.areas
    assert area.geocodes == ("510824",) and area.polygons[0][0] == (105.80, 31.60)  # CAP's lat,lon turned round
    english = parse(cap("cangxi-rainstorm-yellow"), lang="en")
    assert english.headline.startswith("Cangxi County") and english.level == Level.YELLOW  # "yellow" in it
    update = parse(cap("cangxi-rainstorm-orange"))
    assert (update.msg_type, update.level, update.references) == (MsgType.UPDATE, Level.ORANGE,
                                                                  ("51082441600000_20270720140000",))
    assert update.thread == w.thread  # the same warning, raised
    frost = parse(cap("guangyuan-frost-circle"))
    assert frost.level == Level.BLUE  # no colour in its headline: CAP's Minor
    assert frost.areas[0].circles == ((105.97, 31.75, 15.0),)


@pytest.mark.parametrize(
    ("case", "data", "says"),
    [
        ("not XML", b"<alert", "not XML"),
        ("an RSS feed is no alert", b"<rss version='2.0'><channel/></rss>", "not a CAP 1.2 alert"),
        ("no identifier", cap("cangxi-rainstorm-yellow").replace(b"51082441600000_20270720140000", b""),
         "identifier"),
        ("an acknowledgement", cap("cangxi-rainstorm-yellow").replace(b">Alert<", b">Ack<"), "msgType 'Ack'"),
        ("a time without its offset", cap("cangxi-rainstorm-yellow").replace(b"<sent>2027-07-20T14:00:00+08:00",
                                                                            b"<sent>2027-07-20T14:00:00"),
         "no time zone"),
        ("no level at all", cap("guangyuan-frost-circle").replace(b"<severity>Minor", b"<severity>Unknown"),
         "no warning level"),
        ("too big", b"<alert>" + b" " * 1_000_001, "too big"),
    ],
)
def test_what_is_not_a_warning_is_refused_with_the_reason(case: str, data: bytes, says: str) -> None:
    with pytest.raises(CapError, match=says):
        parse(data)


def only(area: Area) -> Warning:
    w = parse(cap("cangxi-rainstorm-yellow"))
    return Warning(w.identifier, w.sender, w.sent_ns, w.msg_type, w.references, w.event, w.level, w.sender_name,
                   w.headline, w.description, w.instruction, w.onset_ns, w.expires_ns, (area,))


@pytest.mark.parametrize(
    ("case", "warning", "codes", "covers"),
    [
        ("the county's polygon", parse(cap("cangxi-rainstorm-yellow")), (), True),
        ("the neighbouring city's polygon", parse(cap("langzhong-gale-blue")), ("510824",), False),
        ("15 km around the valley", parse(cap("guangyuan-frost-circle")), (), True),
        ("1 km around a point 3 km away", only(Area("", (), ((105.99, 31.77, 1.0),), ())), (), False),
        ("the county's code, the village in the county", only(Area("", (), (), ("510824",))), ("510824",), True),
        ("the county's code, the village's town code", only(Area("", (), (), ("510824",))), ("510824101",), True),
        ("the county's code, no code for the village", only(Area("", (), (), ("510824",))), (), False),
        ("another county's code", only(Area("", (), (), ("510881",))), ("510824",), False),
        ("a small polygon inside the plot", only(Area("", (tuple((x + 0.0001, y + 0.0001) for x, y in (
            (105.963026, 31.755938), (105.9632, 31.755938), (105.9632, 31.7561), (105.963026, 31.755938))),), (),
            ())), (), True),
    ],
)
def test_a_warning_covers_the_plots_in_its_area(case: str, warning: Warning, codes: tuple[str, ...],
                                                covers: bool) -> None:
    assert warning.covers(PLOT, codes) is covers, case


@pytest.fixture
def village(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    records = Records.in_data_dir(tmp_path)
    drop = tmp_path / "cap"
    drop.mkdir()
    feed = WarningFeed(drop, refresh_s=60)
    engine = Engine(SITE, store, records, AlarmBook(records), rules={"official_warning": load()["official_warning"]},
                    warnings=feed)
    yield engine, drop
    store.close()
    records.close()


def warnings_on(engine: Engine) -> dict[str, str]:
    return {a.plot or "": a.severity for a in engine.book.active() if a.type == "official_warning"}


def test_a_county_warning_over_the_village_is_one_alarm_per_plot_raised_updated_and_cancelled(village) -> None:  # type: ignore[no-untyped-def]
    engine, drop = village
    shutil.copy(FIXTURES / "cangxi-rainstorm-yellow.xml", drop)
    shutil.copy(FIXTURES / "langzhong-gale-blue.xml", drop)  # the next city's: not ours
    engine.cycle(at("2027-07-20T14:05"))
    assert warnings_on(engine) == {p.id: "warning" for p in SITE.plots}
    active = engine.book.active()
    assert len(group_alarms(active)) == 1  # one group on the wall and in messages
    words = alarm_text(active[0], "zh", SITE)
    assert words.title == "气象预警" and "苍溪县气象台发布暴雨黄色预警" in words.text and "黄色预警" in words.text
    assert "疏通果园排水沟" in words.text and "07-21 14:00" in words.text
    shutil.copy(FIXTURES / "cangxi-rainstorm-orange.xml", drop)
    result = engine.cycle(at("2027-07-20T17:05"))
    assert warnings_on(engine) == {p.id: "major" for p in SITE.plots}  # orange: raised, the same alarms
    assert sorted({outcome for _, outcome in result.changed}) == ["worse"]
    shutil.copy(FIXTURES / "cangxi-rainstorm-cancel.xml", drop)
    result = engine.cycle(at("2027-07-21T06:05"))
    assert warnings_on(engine) == {} and len(result.changed) == 12
    events = engine.book.events(result.changed[0][0].id)
    assert events[-1].action == "cleared" and events[-1].detail.get("ended") == "cancelled"


def test_a_warning_clears_when_it_expires(village) -> None:  # type: ignore[no-untyped-def]
    engine, drop = village
    shutil.copy(FIXTURES / "guangyuan-frost-circle.xml", drop)
    engine.cycle(at("2027-03-14T17:00"))
    assert warnings_on(engine) == {}  # sent at 16:00 for the night from 20:00
    engine.cycle(at("2027-03-14T20:30"))
    assert warnings_on(engine) == {p.id: "warning" for p in SITE.plots}
    engine.cycle(at("2027-03-15T09:30"))
    assert warnings_on(engine) == {}


def test_a_feed_of_cap_links_is_read_once_and_an_outage_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    atom = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Sichuan warnings</title>
<entry><title>yellow</title><link type="application/cap+xml" href="https://cap.example.cn/a.xml"/></entry>
<entry><title>gale</title><link type="application/cap+xml" href="https://cap.example.cn/b.xml"/></entry>
</feed>"""
    served = {"/feed.atom": atom, "/a.xml": cap("cangxi-rainstorm-yellow"), "/b.xml": cap("langzhong-gale-blue")}
    asked: list[str] = []
    down = {"on": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if down["on"]:
            raise httpx.ConnectError("refused")
        asked.append(request.url.path)
        return httpx.Response(200, content=served[request.url.path])

    feed = WarningFeed(url="https://cap.example.cn/feed.atom", refresh_s=300, transport=httpx.MockTransport(handler))
    got = feed.latest(at("2027-07-20T14:05") / NS)
    assert sorted(w.event for w in got) == ["大风", "暴雨"] and asked == ["/feed.atom", "/a.xml", "/b.xml"]
    feed.latest(at("2027-07-20T14:15") / NS)
    assert asked == ["/feed.atom", "/a.xml", "/b.xml", "/feed.atom"]  # the same alerts are not fetched again
    down["on"] = True
    caplog.set_level(logging.WARNING, "orchard.analytics.cap")
    for minutes in (25, 35, 45):
        assert len(feed.latest(at(f"2027-07-20T14:{minutes}") / NS)) == 2  # what it had still counts
    assert [r.getMessage() for r in caplog.records] == ["warnings_failed"]
