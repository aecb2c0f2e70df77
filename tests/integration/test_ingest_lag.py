"""A real ingest that stops reading (SIGSTOP: a stuck disk, a starved CPU) while devices go on publishing: the
backlog waits at the broker, ingest measures how late it arrives, and analytics raises `ingest_behind` for the
command center; once it has caught up, the alarm clears."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from paho.mqtt.client import Client

from analytics.engine import Engine
from bench.servers import InfluxDB, Mosquitto
from orchard.models import INGEST_STATS
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.site import SHIPPED, load_site
from orchard.store import TimeSeriesStore, open_store
from tests.conftest import influx_url, unique
from tests.integration.helpers import IngestProcess, publisher, wait_published

pytestmark = pytest.mark.integration
SITE = load_site(SHIPPED / "sunzigou" / "site.toml").model_copy(update={"cameras": (), "devices": ()})
NS = 1_000_000_000
STATS = re.compile(r"ingest_stats.*?lag_p50_s=([\d.]+)")


def publish_now(pub: Client, prefix: str, seconds: float, rate: float = 20) -> None:
    """Readings stamped with the time they are measured, for `seconds`."""
    infos = []
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        body = {"ts": int(time.time() * 1000), "seq": k, "readings": {"air_temp_c": 3.0}}
        infos.append(pub.publish(f"{prefix}/site/plot/dev{k % 3}/telemetry", orjson.dumps(body), qos=1))
        k += 1
        time.sleep(1 / rate)
    wait_published(pub, infos)


def lags_logged(ingest: IngestProcess, after: int) -> list[float]:
    text = ingest.log.read_text(errors="replace")[after:]
    return [float(x) for x in STATS.findall(text)]


def wait_for_lag(ingest: IngestProcess, after: int, ok: Callable[[float], bool], timeout_s: float = 30) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [lag for lag in lags_logged(ingest, after) if ok(lag)]
        if found:
            return found[0]
        lines = [x for x in ingest.log.read_text(errors="replace").splitlines() if "event=ingest_stats" in x]
        assert time.monotonic() < deadline, "\n".join(lines[-30:])
        time.sleep(0.2)


def stored_period(store: TimeSeriesStore, ok: Callable[[float], bool], after: int = 0, timeout_s: float = 30) -> int:
    """The time of the first ingest period in the store (after `after`) whose median lag passes `ok`."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = store.range(INGEST_STATS, ("lag_p50_s",), after + 1, time.time_ns() + NS)
        found = sorted(r.time_ns for r in rows if r.values.get("lag_p50_s") is not None
                       and ok(float(r.values["lag_p50_s"])))
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no such period stored: {[r.values for r in rows][-10:]}"
        time.sleep(0.2)


def test_a_stalled_ingest_raises_ingest_behind_and_clears_when_caught_up(
        tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB) -> None:
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    ingest = IngestProcess(tmp_path, mosquitto.url, url, prefix, ORCHARD_INGEST__STATS_INTERVAL_S="1")
    ingest.start()
    pub = publisher(mosquitto.url)
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    book = AlarmBook(records)
    store = open_store(url)
    engine = Engine(SITE, store, records, book, ingest_behind_s=4)
    try:
        publish_now(pub, prefix, 2)
        wait_for_lag(ingest, 0, lambda lag: lag < 1)  # on time
        engine.cycle(time.time_ns())
        assert [a.type for a in book.active()] == []

        assert ingest.proc is not None
        mark = len(ingest.log.read_text(errors="replace"))
        ingest.proc.send_signal(signal.SIGSTOP)  # stalled, while the devices go on
        try:
            publish_now(pub, prefix, 10)  # what waits arrives 0-10 s late: the median about 5 s
        finally:
            ingest.proc.send_signal(signal.SIGCONT)
        late = wait_for_lag(ingest, mark, lambda lag: lag >= 4)
        assert late < 15
        # The engine is driven at the stored period's own time (an injected clock): on a loaded machine the point
        # may reach the store seconds after it was logged, and "now" would already have passed it.
        at = stored_period(store, lambda lag: lag >= 4)
        engine.cycle(at + NS)
        (alarm,) = book.active()
        assert (alarm.type, alarm.severity, alarm.message) == ("ingest_behind", "major", "alarm.ingest_behind_text")

        mark = len(ingest.log.read_text(errors="replace"))
        publish_now(pub, prefix, 3)  # caught up: what arrives now is fresh
        wait_for_lag(ingest, mark, lambda lag: lag < 1)
        engine.cycle(stored_period(store, lambda lag: lag < 1, after=at) + NS)
        assert book.active() == []
    finally:
        pub.loop_stop()
        ingest.stop()
        records.close()
