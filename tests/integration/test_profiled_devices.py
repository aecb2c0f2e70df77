"""Devices with a profile, end to end: every shipped profile's published example goes as a real ChirpStack v4 JSON
up event (or, for a Modbus profile, as the raw frame a 4G DTU forwards) through Mosquitto and ingest into
InfluxDB, and is stored under the readings its profile states, item by item; a frame with a bad CRC is a dead
letter with that reason; a field the profile does not know is noted on the device, not dead-lettered."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from analytics.engine import Engine
from bench.servers import InfluxDB, Mosquitto
from orchard.models import Device
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.settings import Settings
from orchard.site import SHIPPED, load_site
from orchard.store import open_store
from sensors.ingest import Ingest
from sensors.profiles import profiles
from sensors.spool import Spool
from sensors.writer import BatchWriter
from tests.conftest import influx_url, unique
from tests.integration.helpers import publisher, wait_published

pytestmark = pytest.mark.integration
NS_TIME_NS = (time.time_ns() // 1_000_000 - 3000) * 1_000_000  # a few seconds ago, to the millisecond
NS_TIME = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NS_TIME_NS // 10**9)) + f".{NS_TIME_NS // 10**6 % 1000:03d}Z"
SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
FIELDS = ["air_temp_c", "rh_pct", "leaf_wetness_pct", "rain_mm", "wind_speed_ms", "wind_gust_ms", "solar_wm2",
          "soil_vwc_pct", "soil_temp_c", "soil_ec_dsm", "soil_ph", "canopy_temp_c", "air_pressure_hpa",
          "wind_dir_deg", "leaf_wetness_index", "battery_v", "battery_pct"]


def until(cond: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def stored(store: object, device: str) -> dict[str, dict[str, float]]:
    """What the store holds for a device: depth ('' for plain readings) -> field -> value."""
    rows = store.range("telemetry", FIELDS, 0, 2**62)  # type: ignore[attr-defined]
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r.tags["device"] == device:
            out.setdefault(r.tags.get("depth_cm", ""), {}).update(
                {k: v for k, v in r.values.items() if v is not None})
    return out


def test_every_profiles_example_is_stored_under_its_readings(tmp_path: Path, mosquitto: Mosquitto,
                                                              influx: InfluxDB) -> None:
    s = Settings(mqtt_url=mosquitto.url, store_url=influx_url(influx, unique("prof")), data_dir=tmp_path,
                 mqtt_prefix=unique("o"), ingest={"client_id": unique("i-")})  # type: ignore[arg-type]
    store = open_store(s.store_url)
    store.ensure_ready()  # what the ingest service does at start
    records = Records.in_data_dir(tmp_path)
    cases = []  # (device, example, topic, payload)
    for n, p in enumerate(profiles().values()):
        ex = next(e for e in p.examples if e.error is None and (e.readings or e.depths))
        device, eui = f"dev-{n}", f"{n:016x}"
        records.upsert_device(Device(device, "s", "p1", "approved", "", eui, profile=p.id))
        if p.kind == "modbus":
            frame = bytes.fromhex(str(ex.payload).replace(" ", ""))
            cases.append((device, ex, f"{s.mqtt_prefix}/s/p1/{device}/telemetry", frame))
        else:
            up = {"deviceInfo": {"devEui": eui, "deviceName": device}, "fCnt": 7, "fPort": 1,
                  "object": {**ex.payload, "firmware_build": 41} if n == 0 else ex.payload}  # type: ignore[dict-item]
            cases.append((device, ex, f"application/1/device/{eui}/event/up", orjson.dumps(up)))
    damaged = "dev-crc"
    sen0601 = profiles()["dfrobot-sen0601"]
    records.upsert_device(Device(damaged, "s", "p1", "approved", "", None, profile=sen0601.id))
    writer = BatchWriter(s, store, records, Spool(tmp_path / "spool"))
    ing = Ingest(s, writer)
    ing.start()
    assert ing.subscribed.wait(20), "no SUBACK from the broker"
    pub = publisher(mosquitto.url)
    infos = [pub.publish(topic, payload, qos=1) for _, _, topic, payload in cases]
    infos.append(pub.publish(f"{s.mqtt_prefix}/s/p1/{damaged}/telemetry",
                             bytes.fromhex("0103060293FF9B03E8D80F"), qos=1))
    wait_published(pub, infos)
    until(lambda: ing.received >= len(infos))
    until(lambda: all(stored(store, device) for device, *_ in cases))
    for device, ex, _, _ in cases:
        want = {"": dict(ex.readings)} if ex.readings else {}
        want |= {depth: dict(readings) for depth, readings in ex.depths.items()}
        got = stored(store, device)
        assert sorted(got) == sorted(want), (device, got)
        for depth, readings in want.items():
            assert got[depth] == pytest.approx(readings), (device, depth)
    until(lambda: any(d.letter.device == damaged for d in records.dead_letters()))
    letter = next(d.letter for d in records.dead_letters() if d.letter.device == damaged)
    assert letter.reason.startswith("bad_crc:")
    assert stored(store, damaged) == {}
    writer.tick(final=True)  # notes the unknown field on the device, once for the day
    first = next(d for d in records.devices() if d.device == "dev-0")
    assert first.unmapped == ("firmware_build",)
    assert not [d for d in records.dead_letters() if d.letter.device == "dev-0"]
    # What each device sent is kept for the devices page, exactly as it came (a Modbus frame as its bytes).
    for device, _, topic, payload in cases:
        last = records.last_payload(device)
        assert last is not None and last[1:] == (topic, payload), device
    assert records.last_payload(damaged) is None  # nothing of it was stored: its frame is a dead letter
    ing.stop()


def test_network_server_events_through_the_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """ChirpStack v4 status, join, log, ack and MAC-only events, a broker set to Protobuf, and a The Things Stack
    v3 uplink: each does what a village operator needs, and none is a dead letter it should not be."""
    s = Settings(mqtt_url=mosquitto.url, store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path,
                 mqtt_prefix=unique("o"), ingest={"client_id": unique("i-")})  # type: ignore[arg-type]
    store = open_store(s.store_url)
    records = Records.in_data_dir(tmp_path)
    eui, tts_eui = unique("")[:16].ljust(16, "0"), unique("")[:16].ljust(16, "1")
    records.upsert_device(Device("em500-1", "s", "p01", "approved", "soil_probe", eui,
                                 profile="milesight-em500-smtc"))
    records.upsert_device(Device("lht65-1", "s", "p2", "approved", "weather_station", tts_eui,
                                 profile="dragino-lht65"))
    writer = BatchWriter(s, store, records, Spool(tmp_path / "spool"))
    ing = Ingest(s, writer)
    ing.start()
    assert ing.subscribed.wait(20), "no SUBACK from the broker"
    pub = publisher(mosquitto.url)
    ev = f"application/{unique('app')}/device/{eui}/event"
    info = {"deviceInfo": {"devEui": eui, "deviceName": "em500-1"}}
    lht65 = profiles()["dragino-lht65"].examples[0].payload
    sent = [
        (f"{ev}/status", orjson.dumps({**info, "margin": 7, "batteryLevel": 87.5, "externalPowerSource": False})),
        (f"{ev}/join", orjson.dumps({**info, "devAddr": "01ab23cd"})),
        (f"{ev}/log", orjson.dumps({**info, "level": "ERROR", "code": "UPLINK_CODEC",
                                    "description": "TypeError: bytes[3] is undefined"})),
        (f"{ev}/ack", orjson.dumps({**info, "acknowledged": True, "fCntDown": 3})),
        (f"{ev}/up", orjson.dumps({**info, "fPort": 0, "fCnt": 9, "data": "AwcH"})),  # MAC commands only
        (f"{ev}/up", b"\x0a\x24" + b"8f4c2b1e-0000-4000-8000-0123456789ab" + b"\x12\x02"),  # Protobuf
        (f"{ev}/up", orjson.dumps({**info, "fPort": 85, "fCnt": 10, "time": "2025-06-01T00:00:00+00:00",
                                   "rxInfo": [{"rssi": -90, "nsTime": NS_TIME}],  # the gateway clock a year off
                                   "object": profiles()["milesight-em500-smtc"].examples[0].payload})),
        (f"v3/{unique('app')}@ttn/devices/lht65-in-ttn/up",
         orjson.dumps({"end_device_ids": {"device_id": "lht65-in-ttn", "dev_eui": tts_eui.upper()},
                       "uplink_message": {"f_port": 2, "f_cnt": 5, "decoded_payload": lht65,
                                          "rx_metadata": [{"rssi": -101}]}})),
    ]
    wait_published(pub, [pub.publish(topic, payload, qos=1) for topic, payload in sent])
    until(lambda: ing.received >= len(sent))
    until(lambda: len(records.dead_letters()) >= 2)
    writer.tick(final=True)
    letters = {d.letter.reason.split(":")[0]: d.letter for d in records.dead_letters()}
    assert sorted(letters) == ["chirpstack_protobuf", "codec_error"]  # ack, join, MAC-only: no dead letter
    assert "json=true under [integration.mqtt] in chirpstack.toml" in letters["chirpstack_protobuf"].reason
    assert letters["codec_error"].device == "em500-1"  # filed under the registered device, not its devEUI
    assert writer.counters.mac_only == 1
    battery = store.range("telemetry", ["battery_pct"], 0, 2**62)
    assert sorted((r.tags["device"], r.values["battery_pct"]) for r in battery) == [
        ("em500-1", 87.5), ("em500-1", 92.0)]  # the status event's, and the uplink's own
    margin = store.range("telemetry", ["link_margin_db"], 0, 2**62)
    assert [(r.tags["device"], r.values["link_margin_db"]) for r in margin] == [("em500-1", 7.0)]
    air = store.range("telemetry", ["air_temp_c", "rh_pct", "battery_v", "rssi_dbm"], 0, 2**62)
    assert [(r.tags["device"], dict(r.values)) for r in air if r.tags["device"] == "lht65-1"] == [
        ("lht65-1", {"air_temp_c": 28.29, "rh_pct": 88.6, "battery_v": 3.062, "rssi_dbm": -101.0})]
    joined = next(d for d in records.devices() if d.device == "em500-1")
    assert joined.last_seen_ns is not None  # the join counts as a sign of life
    soil = store.range("telemetry", ["soil_temp_c"], 0, 2**62)
    assert [(r.tags["device"], r.time_ns, r.values["soil_temp_c"]) for r in soil] == [
        ("em500-1", NS_TIME_NS, 30.8)]  # filed at the network server's time, not the gateway's
    assert joined.clock_skew_s is not None and joined.clock_skew_s < -86400 * 100  # and the device says so
    ing.stop()
    # The codec error is the device's 解码失败 alarm on the next analytics cycle, with ChirpStack's own words.
    book = AlarmBook(records)
    Engine(SITE, store, records, book).cycle(time.time_ns())
    (failed,) = [a for a in book.active() if a.type == "decode_failed"]
    assert (failed.source, failed.plot, failed.details["count"]) == ("device:em500-1", "p01", 1)
    assert "bytes[3] is undefined" in str(failed.details["reason"])
    assert alarm_text(failed, "zh", SITE).title == "解码失败"
