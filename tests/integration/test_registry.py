"""Unknown devices (hold, then approve and replay; reject), online/offline, ChirpStack: through a real broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bench.servers import Mosquitto
from orchard.models import Device
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import open_store
from sensors.ingest import Ingest
from sensors.registry import approve
from sensors.spool import Spool
from sensors.writer import BatchWriter
from tests.conftest import unique
from tests.integration.helpers import publisher, wait_published

pytestmark = pytest.mark.integration
NOW_MS = int(time.time() * 1000)


def until(cond: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def make_ingest(tmp: Path, mosquitto: Mosquitto, policy: str) -> tuple[Ingest, BatchWriter, Settings]:
    """Ingest with its writer in this process (ORCHARD_INGEST__WRITER_PROCESS=false), to look inside it."""
    s = Settings(mqtt_url=mosquitto.url, store_url=f"sqlite:///{tmp}/ts.sqlite", data_dir=tmp,
                 mqtt_prefix=unique("o"), unknown_devices=policy, ingest={"client_id": unique("i-")})  # type: ignore[arg-type]
    writer = BatchWriter(s, open_store(s.store_url), Records.in_data_dir(tmp), Spool(tmp / "spool"))
    ing = Ingest(s, writer)
    ing.start()
    assert ing.subscribed.wait(20), "no SUBACK from the broker"
    return ing, writer, s


def test_held_device_replayed_on_approval(tmp_path: Path, mosquitto: Mosquitto) -> None:
    ing, w, s = make_ingest(tmp_path, mosquitto, "hold")
    pub = publisher(mosquitto.url)
    infos = [pub.publish(f"{s.mqtt_prefix}/s/p9/newbie/telemetry",
                         orjson.dumps({"ts": NOW_MS - k * 1000, "readings": {"air_temp_c": 5.0 + k}}), qos=1)
             for k in range(5)]
    wait_published(pub, infos)
    until(lambda: len(w.records.held("newbie")) == 5)
    assert w.store.range("telemetry", ["air_temp_c"], 0, 2**62) == []
    assert {d.device: d.status for d in w.records.devices()}["newbie"] == "pending"
    result = approve("newbie", s, w.records, w.store)
    assert (result.replayed, result.still_refused) == (5, 0)
    values = sorted(r.values["air_temp_c"] for r in w.store.range("telemetry", ["air_temp_c"], 0, 2**62))
    assert values == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert w.records.held("newbie") == []
    # From now on it is stored directly (the registry is re-read within seconds).
    w._registry_read = 0
    wait_published(pub, [pub.publish(f"{s.mqtt_prefix}/s/p9/newbie/telemetry",
                                     orjson.dumps({"ts": NOW_MS + 1, "readings": {"air_temp_c": 1.0}}), qos=1)])
    until(lambda: len(w.store.range("telemetry", ["air_temp_c"], 0, 2**62)) == 6)
    ing.stop()


def test_rejected_policy_and_presence_and_chirpstack(tmp_path: Path, mosquitto: Mosquitto) -> None:
    ing, w, s = make_ingest(tmp_path, mosquitto, "reject")
    eui = unique("")[:16].ljust(16, "0")
    w.records.upsert_device(Device("lora-1", "s", "p2", "approved", "soil_probe", eui))
    w.refresh_registry(force=True)
    pub = publisher(mosquitto.url)
    p = s.mqtt_prefix
    infos = [
        pub.publish(f"{p}/s/p1/stranger/telemetry", orjson.dumps({"readings": {"rh_pct": 50}}), qos=1),
        pub.publish(f"{p}/s/p2/lora-1/status", b"offline", qos=1),
        pub.publish(f"application/1/device/{eui.upper()}/event/up",
                    orjson.dumps({"fCnt": 3, "object": {"soil_moisture": 33.5}, "rxInfo": [{"rssi": -99}]}), qos=1),
        pub.publish("application/1/device/ffffffffffffffff/event/up", orjson.dumps({"object": {"x": 1}}), qos=1),
    ]
    wait_published(pub, infos)
    until(lambda: ing.received >= 4)
    until(lambda: len(w.records.dead_letters()) >= 2)
    reasons = sorted(d.letter.reason.split(":")[0] for d in w.records.dead_letters())
    assert reasons == ["unknown_dev_eui", "unknown_device"]
    devices = {d.device: d for d in w.records.devices()}
    assert devices["stranger"].status == "pending"
    assert devices["lora-1"].online is False
    rows = w.store.range("telemetry", ["soil_vwc_pct", "rssi_dbm", "seq"], 0, 2**62)
    assert [(r.tags["device"], r.tags["plot"], dict(r.values)) for r in rows] == [
        ("lora-1", "p2", {"soil_vwc_pct": 33.5, "rssi_dbm": -99.0, "seq": 3})]
    assert w.records.dead_letter_counts()[("stranger", "unknown_device")] == 1
    ing.stop()


def test_approved_elsewhere_is_replayed_by_ingest(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The dashboard only marks a device approved in the records; ingest notices and replays what it held."""
    ing, w, s = make_ingest(tmp_path, mosquitto, "hold")
    pub = publisher(mosquitto.url)
    good = [pub.publish(f"{s.mqtt_prefix}/s/p4/late/telemetry",
                        orjson.dumps({"ts": NOW_MS - k * 1000, "readings": {"rh_pct": 40.0 + k}}), qos=1)
            for k in range(3)]
    # Invalid whatever the device's status: dead-lettered at once, never held, never replayed.
    bad = pub.publish(f"{s.mqtt_prefix}/s/p4/late/telemetry",
                      orjson.dumps({"ts": NOW_MS, "readings": {"rh_pct": 140.0}}), qos=1)
    wait_published(pub, [*good, bad])
    until(lambda: len(w.records.dead_letters(device="late")) == 4)
    assert len(w.records.held("late")) == 3
    Records.in_data_dir(tmp_path).set_device_status("late", "approved")  # as the dashboard's button does
    w._registry_read = 0
    until(lambda: len(w.store.range("telemetry", ["rh_pct"], 0, 2**62, where={"device": "late"})) == 3)
    until(lambda: w.records.held("late") == [])
    assert w.records.approved_with_held() == []
    ing.stop()
