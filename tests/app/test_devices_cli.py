"""`orchard devices profiles` and `orchard devices decode`: an operator checks a sensor before deploying it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app

EM500 = {"battery": 92, "temperature": 30.8, "humidity": 50.5}
DECODED = {"readings": {"soil_temp_c": 30.8, "soil_vwc_pct": 50.5}, "battery_pct": 92.0}


def test_profiles_lists_every_model_as_json() -> None:
    result = CliRunner().invoke(app, ["devices", "profiles", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) >= 20
    em500 = next(r for r in rows if r["id"] == "milesight-em500-smtc")
    assert (em500["vendor"], em500["model"]) == ("Milesight", "EM500-SMTC")
    assert em500["readings"] == ["battery_pct", "soil_ec_dsm", "soil_temp_c", "soil_vwc_pct"]


@pytest.mark.parametrize(("message", "kind"), [
    ({"deviceInfo": {"devEui": "24e124136b502217"}, "fPort": 85, "object": {**EM500, "uplink_id": 7}},
     "chirpstack v4 up"),
    ({"end_device_ids": {"device_id": "em500"}, "uplink_message": {"f_port": 85, "decoded_payload": EM500}},
     "the things stack v3 up"),
    (EM500, "decoded object"),
], ids=["chirpstack", "the-things-stack", "raw-object"])
def test_decode_reads_each_kind_of_message(tmp_path: Path, message: dict[str, object], kind: str) -> None:
    path = tmp_path / "uplink.json"
    path.write_text(json.dumps(message))
    result = CliRunner().invoke(app, ["devices", "decode", "--profile", "milesight-em500-smtc", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["input"] == kind and {k: out[k] for k in DECODED} == DECODED
    assert out["unmapped"] == (["uplink_id"] if kind.startswith("chirpstack") else [])


def test_decode_reads_a_native_message_and_a_modbus_frame_from_stdin() -> None:
    native = json.dumps({"readings": {"air_temp_c": 3.2, "soil_vwc_pct": [{"value": 31.5, "depth_cm": 20}]},
                         "battery_v": 3.6})
    result = CliRunner().invoke(app, ["devices", "decode", "--profile", "dragino-lht65", "-"], input=native)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["readings"] == {"air_temp_c": 3.2, "soil_vwc_pct": [{"value": 31.5, "depth_cm": 20}]}
    assert out["battery_v"] == 3.6
    result = CliRunner().invoke(app, ["devices", "decode", "--profile", "dfrobot-sen0601", "-"],
                                input="01 03 06 02 92 FF 9B 03 E8 D8 0F")
    assert json.loads(result.output)["readings"] == {"soil_vwc_pct": 65.8, "soil_temp_c": -10.1, "soil_ec_dsm": 1.0}


@pytest.mark.parametrize(("profile", "payload", "says"), [
    ("dfrobot-sen0601", "01 03 06 02 93 FF 9B 03 E8 D8 0F", "bad_crc"),
    ("milesight-em500-smtc", "not json", "not_json"),
    ("milesight-em500-smtc", '{"deviceInfo": {}, "object": null}', "give the device profile a codec"),
    ("no-such-model", "{}", "no device profile 'no-such-model'"),
], ids=["bad-crc", "not-json", "chirpstack-without-codec", "unknown-profile"])
def test_decode_exits_2_with_the_reason(profile: str, payload: str, says: str) -> None:
    result = CliRunner().invoke(app, ["devices", "decode", "--profile", profile, "-"], input=payload)
    assert result.exit_code == 2 and says in result.output, result.output
