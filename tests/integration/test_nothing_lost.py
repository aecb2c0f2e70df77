"""Faults mid-stream, real servers, counts checked reading by reading: nothing lost; and, counted at a proxy in
front of InfluxDB write by write (the store itself merges a repeat), nothing written twice where nothing crashed.
Where a process is killed, what it had read but not acked comes again: those repeats are counted and bounded."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from bench.servers import InfluxDB, Mosquitto
from orchard.store import open_store
from tests.conftest import influx_url, unique
from tests.integration.helpers import (
    T_BASE_MS,
    IngestProcess,
    Timer,
    WriteCounter,
    assert_all_stored,
    publish_stream,
    publisher,
    wait_published,
)

pytestmark = pytest.mark.integration
# A killed ingest or writer, or a restarted broker, repeats what was read but not acked: at most a batch
# (ORCHARD_INGEST__BATCH_SIZE) at these rates.
BATCH = 2000


@pytest.mark.slow
def test_influxdb_down_30_seconds_mid_stream(tmp_path: Path, mosquitto: Mosquitto, own_influx: InfluxDB) -> None:
    prefix, db = unique("o"), unique("db")
    url = influx_url(own_influx, db)
    writes = WriteCounter(url)
    ingest = IngestProcess(tmp_path, mosquitto.url, writes.url, prefix)
    ingest.start()
    pub = publisher(mosquitto.url)
    n, rate = 4000, 100  # 40 s of publishing; the store is away from 5 s to 35 s

    def fault(k: int) -> None:
        if k == 500:
            own_influx.stop(signal.SIGKILL)
        if k == 3500:
            own_influx.start()

    infos = publish_stream(pub, prefix, n, rate, during=fault)
    wait_published(pub, infos)
    assert_all_stored(open_store(url), n, writes=writes)  # spooled and replayed: each written once
    assert "batch_spooled" in ingest.log.read_text() and "spool_replayed" in ingest.log.read_text()
    assert ingest.alive()
    ingest.stop()


def test_ingest_killed_mid_stream_and_restarted(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB) -> None:
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    writes = WriteCounter(url)
    ingest = IngestProcess(tmp_path, mosquitto.url, writes.url, prefix)
    ingest.start()
    pub = publisher(mosquitto.url)
    restarted: list[bool] = []

    def fault(k: int) -> None:
        if k == 1000:
            ingest.kill()  # SIGKILL: whatever was read but not yet acked must come back
        if k == 2000:
            ingest.start()
            restarted.append(True)

    infos = publish_stream(pub, prefix, 3000, 500, during=fault)
    wait_published(pub, infos)
    assert restarted
    assert_all_stored(open_store(url), 3000, writes=writes, doubles_allowed=BATCH)
    ingest.stop()


def test_writer_process_killed_mid_stream(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB) -> None:
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    writes = WriteCounter(url)
    ingest = IngestProcess(tmp_path, mosquitto.url, writes.url, prefix)
    ingest.start()
    pub = publisher(mosquitto.url)
    killed: list[int] = []

    def fault(k: int) -> None:
        if k == 1000:
            killed.append(ingest.writer_pid())
            os.kill(killed[0], signal.SIGKILL)  # the batch it held is not acked: a new writer gets it again

    infos = publish_stream(pub, prefix, 3000, 500, during=fault)
    wait_published(pub, infos)
    assert_all_stored(open_store(url), 3000, writes=writes, doubles_allowed=BATCH)
    assert "writer_process_died" in ingest.log.read_text()
    assert ingest.alive() and ingest.writer_pid() != killed[0]
    ingest.stop()


def test_mosquitto_restarted_mid_stream(tmp_path: Path, own_mosquitto: Mosquitto, influx: InfluxDB) -> None:
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    writes = WriteCounter(url)
    ingest = IngestProcess(tmp_path, own_mosquitto.url, writes.url, prefix)
    ingest.start()
    pub = publisher(own_mosquitto.url)
    restart = Timer(0, own_mosquitto.restart)

    def fault(k: int) -> None:
        if k == 1000:
            restart.start()  # the broker saves its queues on shutdown and loads them back

    infos = publish_stream(pub, prefix, 3000, 300, during=fault)
    restart.join()
    assert restart.error is None
    wait_published(pub, infos)
    assert_all_stored(open_store(url), 3000, writes=writes, doubles_allowed=BATCH)
    ingest.stop()


def test_ingest_offline_while_messages_queue_up(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB) -> None:
    """More than Mosquitto's default 1,000-message queue arrives while ingest is away: none dropped (the deploy
    config limits the queue in bytes, not by count)."""
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    writes = WriteCounter(url)
    ingest = IngestProcess(tmp_path, mosquitto.url, writes.url, prefix)
    ingest.start()  # creates the persistent session and its subscriptions
    ingest.stop()
    pub = publisher(mosquitto.url)
    wait_published(pub, publish_stream(pub, prefix, 5000, 5000))  # PUBACK: each one is in ingest's queue
    ingest.start()
    assert_all_stored(open_store(url), 5000, writes=writes, doubles_allowed=0)
    ingest.stop()


def deploy_autosave() -> tuple[int, bool]:
    """autosave_interval and autosave_on_changes of deploy/mosquitto/mosquitto.conf, the config tested here."""
    conf = (Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    interval = int(re.search(r"(?m)^autosave_interval (\d+)$", conf)[1])  # type: ignore[index]
    on_changes = re.search(r"(?m)^autosave_on_changes true$", conf) is not None
    return interval, on_changes


@pytest.mark.slow
def test_mosquitto_sigkilled_with_messages_queued(tmp_path: Path, own_mosquitto: Mosquitto, influx: InfluxDB) -> None:
    """The broker crashes (SIGKILL: no save on shutdown) while messages it has already acknowledged to the devices
    wait in ingest's queue (ingest away for an upgrade). What it had saved survives; what it had not is lost:
    with autosave_on_changes, at most autosave_interval changes (a message queued is one, its delivery another)."""
    interval, on_changes = deploy_autosave()
    assert on_changes, "the deploy config saves on changes: a crash loses a bounded number of messages"
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    ingest = IngestProcess(tmp_path, own_mosquitto.url, url, prefix)
    ingest.start()  # creates the persistent session and its subscriptions
    ingest.stop()
    pub = publisher(own_mosquitto.url)
    n = 2000
    wait_published(pub, publish_stream(pub, prefix, n, 400))  # every one acknowledged by the broker
    pub.loop_stop()
    own_mosquitto.stop(signal.SIGKILL)
    own_mosquitto.start()
    ingest.start()
    start, end = (T_BASE_MS - 1) * 10**6, (T_BASE_MS + n * 10 + 1) * 10**6
    store = open_store(url)
    deadline, stored, last_change = time.monotonic() + 60, -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_change < 5:  # until nothing more arrives
        now_stored = len(store.range("telemetry", ["air_temp_c"], start, end))
        if now_stored != stored:
            stored, last_change = now_stored, time.monotonic()
        time.sleep(0.5)
    lost = n - stored
    print(f"broker SIGKILL with {n} queued: {lost} lost (autosave_interval {interval}, on changes)")
    assert 0 <= lost <= interval
    ingest.stop()
