"""The records DB (PostgreSQL) goes away for a minute under a running analytics service, once stopped and once
SIGKILLed: the service's loops live through it, its cycles resume, the escalation and the digest that fell due
during the outage go out once it is back, an alarm raised by data that arrived meanwhile reaches its person, and
nobody gets any message twice (counted at a real HTTP receiver, message by message)."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from datetime import time as dtime
from pathlib import Path

import orjson
import pytest
from paho.mqtt.client import MQTTMessageInfo

from analytics.notify.dispatch import Escalation
from analytics.service import Analytics, build
from bench.servers import InfluxDB, Mosquitto, Postgres
from orchard.catalogue import TELEMETRY
from orchard.models import Point
from orchard.records import Records
from orchard.records.people import People, User
from orchard.settings import Settings
from orchard.site import site_for
from orchard.store import open_store
from orchard.supervise import read_beat
from tests.analytics.receivers import HttpReceiver
from tests.conftest import influx_url, unique
from tests.integration.helpers import (
    IngestProcess,
    WriteCounter,
    assert_all_stored,
    publish_stream,
    publisher,
    wait_published,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NS = 10**9
OUTAGE_S = 60


def wait_for(what: str, done: Callable[[], bool], timeout_s: float, state: Callable[[], object] = str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {state()}"
        time.sleep(0.1)


def low_battery(store_url: str, site: str, plot: str, device: str, now_ns: int) -> None:
    open_store(store_url).write([Point(TELEMETRY, {"site": site, "plot": plot, "device": device},
                                       {"battery_v": 3.2}, now_ns - k * 60 * NS) for k in range(5)])


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_analytics_lives_through_a_records_db_outage(tmp_path: Path, own_postgres: Postgres,
                                                      how: signal.Signals) -> None:
    hook = HttpReceiver().start()
    s = Settings(store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path,
                 db_url=own_postgres.fresh_database("outage"),
                 notify={"webhook_url": f"{hook.base}/plain", "group_wait_s": 0},  # type: ignore[arg-type]
                 analytics={"every_s": 1.0})  # type: ignore[arg-type]
    site = site_for(s)
    tz = site.tz
    # The service's clock: today at 07:59:40 local when the test starts, so the 08:00 digest falls due during the
    # outage, whatever the hour CI runs at.
    start = datetime.now(tz).replace(hour=7, minute=59, second=40, microsecond=0)
    offset = int(start.timestamp() * NS) - time.time_ns()

    def clock() -> int:
        return time.time_ns() + offset

    records = Records.open(s)
    people = People(records)
    people.upsert(User("adviser", "农技员", "adviser", channels=("webhook",)))
    people.set_plots("adviser", [p.id for p in site.plots], "covers")
    people.upsert(User("center", "指挥中心", "center", channels=("webhook",)))
    records.close()

    service: Analytics = build(s, with_mqtt=False, clock=clock)
    # A warning escalates from the adviser to the command center after 30 s without an ack: during the outage.
    service.dispatcher.escalation["warning"] = Escalation(next_after_min=(0.5,))
    assert service.digest is not None
    service.digest.at = dtime(8, 0)
    low_battery(s.store_url, s.site, "p04", "ws-p04", clock())
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        outage_and_recovery(service, runner, own_postgres, how, hook, s, clock)
    finally:
        service.stop.set()
        service.wake.set()
        runner.join(30)
        hook.stop()


def outage_and_recovery(service: Analytics, runner: threading.Thread, own_postgres: Postgres, how: signal.Signals,
                        hook: HttpReceiver, s: Settings, clock: Callable[[], int]) -> None:
    """The outage itself, under the running service; the test stops the service whatever happens here."""

    def got() -> Counter[tuple[str, object, str]]:
        return Counter((r.json()["recipient"], r.json()["alarm_id"], r.json()["subject"]) for r in hook.got)

    def battery_alarm(device: str) -> int | None:
        found = [a.id for a in service.engine.book.active() if a.type == "low_battery" and device in a.source]
        return found[0] if found else None

    def to(who: str, alarm: int | None) -> list[tuple[str, object, str]]:
        """Messages to `who` about the alarm (None: the digest)."""
        return [k for k in got() if k[0] == who and k[1] == alarm]

    wait_for("the battery alarm", lambda: battery_alarm("ws-p04") is not None, 30)
    first = battery_alarm("ws-p04")
    wait_for("the adviser's first message", lambda: len(to("adviser", first)) == 1, 30)
    assert not to("center", first) and not to("adviser", None)  # neither escalated nor digest yet

    own_postgres.stop(how)
    down_at = time.monotonic()
    low_battery(s.store_url, s.site, "p05", "ws-p05", clock())  # new data while the records DB is away
    wait_for("a failed cycle", lambda: service.steps.total() > 0, 20)
    cycles_in_outage = service.cycles
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    assert runner.is_alive() and service.cycles > cycles_in_outage  # it kept trying, did not die
    assert not service.last_ok
    assert to("center", first) == [] and to("adviser", None) == []  # nothing could be sent meanwhile
    own_postgres.start()
    back_at = time.monotonic()

    # Caught up: the escalation to the center, the digest to both, the new alarm to the adviser.
    def caught_up() -> bool:
        second = battery_alarm("ws-p05")
        return (second is not None and len(to("adviser", second)) == 1 and len(to("center", first)) == 1
                and len(to("adviser", None)) == 1 and len(to("center", None)) == 1)

    wait_for("escalation, digest and the new alarm", caught_up, 60,
             lambda: (first, battery_alarm("ws-p05"), sorted(got().items(), key=str), service.steps.failures))
    recovered_s = time.monotonic() - back_at

    def fresh_beat() -> bool:  # the cycle that caught up ends, and says so
        beat = read_beat(s.data_dir, "analytics")
        return beat is not None and beat.age_s(time.time()) < 10 and service.last_ok

    wait_for("a fresh heartbeat after the outage", fresh_beat, 30)
    cycles = service.cycles
    wait_for("three more cycles", lambda: service.cycles >= cycles + 3, 30)

    doubles = {k: n for k, n in got().items() if n > 1}
    assert doubles == {}, f"sent more than once: {doubles}"
    print(f"records DB {how.name}: outage {OUTAGE_S} s, caught up {recovered_s:.1f} s after it came back, "
          f"{service.steps.total()} failed steps logged")



def test_ingest_lives_through_a_records_db_outage(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB,
                                                 own_postgres: Postgres) -> None:
    """PostgreSQL stopped for 60 s while readings and bad messages stream in: every reading is stored, each
    written exactly once (counted at a proxy in front of InfluxDB); every bad message of that minute is kept as a
    dead letter, once; and the same ingest process ran throughout, never restarted."""
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    writes = WriteCounter(url)
    ingest = IngestProcess(tmp_path, mosquitto.url, writes.url, prefix,
                           ORCHARD_DB_URL=own_postgres.fresh_database("ingest"))
    ingest.start()
    assert ingest.proc is not None
    pid = ingest.proc.pid
    pub = publisher(mosquitto.url)
    n, rate = 8000, 100  # 80 s of readings; the records DB is away from 10 s to 70 s
    bad: list[int] = []
    stopped: list[float] = []

    def fault(k: int) -> None:
        if k == 1000:
            own_postgres.stop()
            stopped.append(time.monotonic())
        if k == 7000:
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped[0])))
            own_postgres.start()
            stopped.append(time.monotonic())
        # A broken device, before the outage and in its second half (its dead letters need the records DB too);
        # in the first half, the first to find the records DB gone is the writer's registry refresh.
        if k % 200 == 100 and not 1000 <= k < 4000:
            bad.append(k)
            infos.append(pub.publish(f"{prefix}/site/plot/broken/telemetry",
                                     orjson.dumps({"seq": k, "readings": {"air_temp_c": "hot"}}), qos=1))

    infos: list[MQTTMessageInfo] = []
    infos += publish_stream(pub, prefix, n, rate, during=fault)
    wait_published(pub, infos)
    assert stopped[1] - stopped[0] >= OUTAGE_S
    assert_all_stored(open_store(url), n, writes=writes, timeout_s=180)
    records = Records(own_postgres.url.rsplit("/", 1)[0] + "/ingest")
    deadline = time.monotonic() + 60
    while len(letters := records.dead_letters(device="broken")) < len(bad) and time.monotonic() < deadline:
        time.sleep(0.5)
    seqs = Counter(orjson.loads(x.letter.payload)["seq"] for x in letters)
    assert seqs == Counter(bad), "dead letters lost or doubled"
    assert ingest.alive() and ingest.proc.pid == pid
    log = ingest.log.read_text()
    assert log.count("mqtt_connected") == 1 and "records_write_failed" in log
    ingest.stop()
    records.close()
    writes.stop()
