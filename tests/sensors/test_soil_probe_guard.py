"""Frost and disease rules read air sensors only: a soil probe's reading that claims to be about the air (a
vendor decoder's "temperature" mapped by name to air_temp_c) is refused at ingest with the reason, and its soil
readings are stored. Through the real writer, SQLite store and records DB."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from orchard.models import Device
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import open_store
from sensors.spool import Spool
from sensors.writer import BatchWriter

EUI = "24e124136b502217"


@pytest.mark.parametrize(("kind", "stored", "refused"), [
    ("soil_probe", {"soil_vwc_pct": 50.5}, ["air_temp_c"]),
    ("weather_station", {"soil_vwc_pct": 50.5, "air_temp_c": 30.8}, []),
], ids=["soil-probe", "weather-station"])
def test_a_soil_probe_never_gives_air_temperature(tmp_path: Path, kind: str, stored: dict[str, float],
                                                  refused: list[str]) -> None:
    s = Settings(store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path)
    records = Records.in_data_dir(tmp_path)
    records.upsert_device(Device("em500-1", "s", "p1", "approved", kind, EUI))  # no profile: names as sent
    store = open_store(s.store_url)
    writer = BatchWriter(s, store, records, Spool(tmp_path / "spool"))
    up = {"deviceInfo": {"devEui": EUI}, "fPort": 85, "object": {"temperature": 30.8, "soil_moisture": 50.5}}
    writer.handle([(f"application/1/device/{EUI}/event/up", orjson.dumps(up), time.time_ns())])
    rows = store.range("telemetry", ["air_temp_c", "soil_vwc_pct"], 0, 2**62)
    assert [dict(r.values) for r in rows] == [stored]
    reasons = [d.letter.reason for d in records.dead_letters()]
    assert [r.split(":")[0] for r in reasons] == (["wrong_sensor"] if refused else [])
    if refused:
        assert "soil probe em500-1 sent air_temp_c" in reasons[0]
