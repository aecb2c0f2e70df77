"""The whole loop, end to end: the simulator's frost night on plot p01 goes through Mosquitto and ingest into
InfluxDB -> analytics raises a spring-frost alarm -> a signed DingTalk message reaches the (real, loopback)
robot endpoint -> the farmer opens his link, which records the read -> he acknowledges through it -> escalation
stops -> the dashboard's read-receipt matrix shows who read it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from analytics.engine import Engine
from analytics.notify.channels import build_channels
from analytics.notify.dispatch import Dispatcher
from bench.servers import InfluxDB, Mosquitto
from orchard.catalogue import TELEMETRY
from orchard.mqtt import telemetry_topic
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, User
from orchard.settings import NotifySettings
from orchard.site import SHIPPED, load_site
from orchard.store import open_store
from sensors.simulate import Generator, make_site
from tests.analytics.receivers import DING_SECRET, HttpReceiver
from tests.conftest import Seeded, influx_url, unique
from tests.integration.helpers import IngestProcess, publisher, wait_published

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 10**9
# The simulator's (seed 1) first March frost: the low plot p01 ('Hongyang', budbreak) below -1.5 C from 00:00.
FROST = datetime.fromisoformat("2026-03-02T00:40:00+08:00").timestamp()
SECRET = "e2e-link-secret"


def test_frost_night_to_acknowledged_read_receipt(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  run_app: Callable[..., AppTest]) -> None:
    prefix, store_url = unique("o"), influx_url(influx, unique("e2e"))
    ingest = IngestProcess(tmp_path, mosquitto.url, store_url, prefix)
    ingest.start()
    data_dir = Path(ingest.env["ORCHARD_DATA_DIR"])

    # 1. Three hours of the night from the plot's two devices, as they would publish them.
    gen = Generator(1, 60)
    devices = [d for d in make_site(24, 1, SITE) if d.plot.plot == "p01"]
    pub = publisher(mosquitto.url)
    infos, start = [], FROST - 3 * 3600
    for k in range(181):
        for d in devices:
            payload = gen.payload(d, start + 60 * k, k)
            infos.append(pub.publish(telemetry_topic(prefix, SITE.id, "p01", d.device), payload, qos=1))
    wait_published(pub, infos)
    store = open_store(store_url)
    deadline = time.monotonic() + 60
    while not [r for r in store.range(TELEMETRY, ["air_temp_c"], int((FROST - 60) * NS), int((FROST + 1) * NS))]:
        assert time.monotonic() < deadline, "the night did not reach the store"
        time.sleep(0.2)

    # 2. The people, and the analytics engine and dispatcher pointed at a DingTalk robot on loopback.
    records = Records.in_data_dir(data_dir)
    people = People(records)
    people.upsert(User("wang", "王建国", "farmer", phone="13800000001", channels=("dingtalk",)))
    people.set_plots("wang", ["p01"], "owns")
    people.upsert(User("li", "李明", "adviser", channels=("inbox",)))
    people.set_plots("li", ["p01"], "covers")
    robot = HttpReceiver().start()
    cfg = NotifySettings(public_url="https://orchard.example.cn", link_secret=SECRET,  # type: ignore[arg-type]
                         link_ttl_h=2 * 365 * 24,  # the night is in March; the link is opened now
                         dingtalk_url=f"{robot.base}/robot/send?access_token=t",  # type: ignore[arg-type]
                         dingtalk_secret=DING_SECRET)  # type: ignore[arg-type]
    book, outbox = AlarmBook(records), Outbox(records)
    dispatcher = Dispatcher(SITE, people, outbox, book, build_channels(cfg, httpx.Client(timeout=5)), cfg)
    now = int(FROST * NS)
    result = Engine(SITE, store, records, book).cycle(now)
    frost = next(a for a, how in result.changed if a.type == "spring_frost" and how == "raised")
    assert frost.plot == "p01" and frost.severity == "critical" and frost.details["temp_c"] < -1.5

    # 3. The message: signed, to the farmer, with his link.
    dispatcher.on_changes(result.changed, now)
    dispatcher.deliver(now)
    assert robot.got == []  # held a moment for the other plots' alarms to join it (grouping)
    dispatcher.deliver(now + int(cfg.group_wait_s * NS))
    assert robot.refused == []
    ding = next(r.json() for r in robot.got if "春季晚霜冻" in r.json()["markdown"]["title"])
    assert ding["at"]["atMobiles"] == ["13800000001"]
    token = ding["markdown"]["text"].split("receipt?t=")[1].split(")")[0]

    # 4. He opens it (the read is recorded) and acknowledges through it.
    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", SECRET)
    dashboard = Seeded(data_dir, store_url)
    page = run_app(dashboard, "receipt", t=token)
    assert "春季晚霜冻" in page.title[0].value
    (sent,) = [n for n in outbox.for_alarm(frost.id) if n.user == "wang"]
    assert sent.read_ns is not None
    page.button(key="receipt_ack").click().run()
    assert book.get(frost.id).acked_by == "wang"

    # 5. Escalation stops: twenty minutes on, nobody else is called.
    assert dispatcher.escalate(now + 20 * 60 * NS) == 0
    assert {n.user for n in outbox.for_alarm(frost.id)} == {"wang"}

    # 6. The command center sees who read it.
    tables = [t.value for t in run_app(dashboard, "alarms").dataframe]
    matrix = next(t for t in tables if "渠道" in t.columns and (t["人员"] == "wang").any())
    row = matrix[matrix["人员"] == "wang"].iloc[0]
    assert row["渠道"] == "dingtalk" and row["发送状态"] == "已送达" and row["阅读时间"] != "未读"
    robot.stop()
    pub.loop_stop()
    ingest.stop()
