"""A restore drill with the services running: real ingest and analytics processes write to PostgreSQL and
InfluxDB (readings, device sightings, alarms, their trail, messages) while `orchard admin backup` runs; the
archive restores into a new, empty PostgreSQL database and InfluxDB database (PostgreSQL checks every foreign key
on the way in), holds everything that was written before the backup began, and the services then run on the
restored data: new readings are stored and new alarms get new ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Table, func, select

from bench.servers import InfluxDB, Mosquitto, Postgres
from orchard.catalogue import TELEMETRY
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.people import People, User
from orchard.records.schema import alarm_events, alarms, notifications
from orchard.site import SHIPPED, DeviceConfig, load_site
from orchard.store import open_store
from tests.conftest import influx_url, unique
from tests.integration.helpers import IngestProcess, publisher, wait_published

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
STATIONS = [d for d in SITE.devices if d.kind == "weather_station"]
PROBES = [d for d in SITE.devices if d.kind == "soil_probe"]


def wait_for(what: str, done: Callable[[], bool], timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (
            f":\n{log.read_text(errors='replace')[-3000:]}" if log else "")
        time.sleep(0.2)


class Analytics:
    """`orchard analytics` as its own process, started and waited for like ingest."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def cycles(self) -> int:
        return self.log.read_text(errors="replace").count("event=cycle scope=full") if self.log.exists() else 0

    def start(self) -> None:
        before = self.cycles()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app", "analytics"], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        wait_for("analytics' first full cycle", lambda: self.cycles() > before, 60, self.log)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def env_for(tmp: Path, db_url: str, store_url: str, mqtt_url: str, prefix: str) -> dict[str, str]:
    return {**os.environ, "ORCHARD_DB_URL": db_url, "ORCHARD_STORE_URL": store_url, "ORCHARD_MQTT_URL": mqtt_url,
            "ORCHARD_MQTT_PREFIX": prefix, "ORCHARD_DATA_DIR": str(tmp), "ORCHARD_SITE": SITE.id,
            "ORCHARD_ANALYTICS__EVERY_S": "1"}


def publish(stop: threading.Event, mqtt_url: str, prefix: str, devices: list[DeviceConfig],
            battery: Callable[[int], float], sent: list[int]) -> None:
    """Every device every 50 ms, stamped now, until stopped (at most 60 s); battery(k) for the k-th round."""
    pub = publisher(mqtt_url)
    infos = []
    for k in range(1200):
        if stop.is_set():
            break
        for d in devices:
            values = {"air_temp_c": 8.0, "rh_pct": 70.0} if d.kind == "weather_station" else {"soil_vwc_pct": 30.0}
            body = {"ts": int(time.time() * 1000), "seq": k, "readings": values, "battery_v": battery(k)}
            infos.append(pub.publish(f"{prefix}/{SITE.id}/{d.plot}/{d.id}/telemetry", orjson.dumps(body), qos=1))
        sent.append(k)
        time.sleep(0.05)
    wait_published(pub, infos)
    pub.loop_stop()


def readings(store_url: str) -> int:
    return len(open_store(store_url).range(TELEMETRY, ["battery_v"], 0, time.time_ns() + 10**12))


def count(records: Records, table: Table) -> int:
    with records.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_backup_while_ingest_and_analytics_write_restores_and_runs(
        tmp_path: Path, mosquitto: Mosquitto, postgres: Postgres, influx: InfluxDB) -> None:
    prefix = unique("o")
    live_db, live_store = postgres.fresh_database(unique("live")), influx_url(influx, unique("live"))
    live = Records(live_db)
    people = People(live)
    people.upsert(User("adviser", "农技员", "adviser", channels=("inbox",)))
    people.set_plots("adviser", [p.id for p in SITE.plots], "covers")
    env = env_for(tmp_path / "live", live_db, live_store, mosquitto.url, prefix)
    ingest = IngestProcess(tmp_path, mosquitto.url, live_store, prefix, ORCHARD_DB_URL=live_db,
                           ORCHARD_DATA_DIR=str(tmp_path / "live"))
    analytics = Analytics(tmp_path / "analytics-live.log", env)
    stop, sent = threading.Event(), list[int]()
    # Batteries run down station by station while the backup runs: alarms raised, messages queued, all along.
    low = lambda k: 3.2 if k > 20 else 3.9  # noqa: E731
    feeder = threading.Thread(target=publish, args=(stop, mosquitto.url, prefix, STATIONS, low, sent), daemon=True)
    try:
        ingest.start()
        analytics.start()
        feeder.start()
        wait_for("low-battery alarms", lambda: any(a.type == "low_battery" for a in AlarmBook(live).active()), 60,
                 analytics.log)
        stored_before = readings(live_store)
        alarms_before = {a.id for a in AlarmBook(live).recent(365, time.time_ns())}
        events_before = count(live, alarm_events)
        archive = tmp_path / "drill.tar.gz"
        done = subprocess.run([sys.executable, "-m", "app", "admin", "backup", str(archive)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        rounds_during = len(sent)
    finally:
        stop.set()
        feeder.join(90)
        analytics.stop()
        ingest.stop()
    assert rounds_during > 20  # the devices were publishing (and the batteries low) while the backup ran
    assert archive.stat().st_mode & 0o777 == 0o600
    stored_after = readings(live_store)

    new_db, new_store = postgres.fresh_database(unique("drill")), influx_url(influx, unique("drill"))
    restored_env = env_for(tmp_path / "restored", new_db, new_store, mosquitto.url, prefix)
    done = subprocess.run([sys.executable, "-m", "app", "admin", "restore", str(archive)], env=restored_env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    restored = Records(new_db)
    points = readings(new_store)
    assert stored_before <= points <= stored_after  # one moment between the two
    restored_alarms = {a.id for a in AlarmBook(restored).recent(365, time.time_ns())}
    assert alarms_before <= restored_alarms  # everything raised before the backup began
    assert count(restored, alarm_events) >= events_before
    assert People(restored).get("adviser") is not None
    assert count(restored, notifications) > 0

    # The services run on what was restored: readings stored, and a new alarm gets a new id (sequences reset):
    # the soil probes, silent until now, report with low batteries.
    ingest = IngestProcess(tmp_path, mosquitto.url, new_store, prefix, ORCHARD_DB_URL=new_db,
                           ORCHARD_DATA_DIR=str(tmp_path / "restored"))
    analytics = Analytics(tmp_path / "analytics-restored.log", restored_env)
    stop, sent = threading.Event(), list[int]()
    feeder = threading.Thread(target=publish, args=(stop, mosquitto.url, prefix, PROBES, lambda k: 3.2, sent),
                              daemon=True)
    try:
        ingest.start()
        analytics.start()
        feeder.start()
        wait_for("new readings in the restored store", lambda: readings(new_store) > points, 60, ingest.log)
        top = max(restored_alarms)
        wait_for("an alarm raised on the restored DB", lambda: count(restored, alarms) > len(restored_alarms), 90,
                 analytics.log)
        with restored.engine.connect() as conn:
            newest = int(conn.execute(select(func.max(alarms.c.id))).scalar_one())
        assert newest > top
        said = analytics.log.read_text(errors="replace")
        assert "IntegrityError" not in said, said[-3000:]  # ids restored without their sequences would collide
        assert "step_failed" not in said, said[-3000:]
    finally:
        stop.set()
        feeder.join(90)
        analytics.stop()
        ingest.stop()
        restored.close()
        live.close()
