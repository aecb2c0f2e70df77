"""Payload validation, table-driven: what is stored, what is refused and why."""

from __future__ import annotations

import orjson
import pytest

from orchard.models import Device
from sensors.payload import Refused, Route, parse_chirpstack, parse_native, route, to_points

NOW = 1_790_000_000_000_000_000  # ns
NOW_MS = NOW // 1_000_000
TOL = 300 * 10**9
R = Route("telemetry", "s", "p1", "d1")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("orchard/s/p1/d1/telemetry", Route("telemetry", "s", "p1", "d1")),
        ("orchard/笋子沟/一号园/ws-01/status", Route("status", "笋子沟", "一号园", "ws-01")),
        ("application/7/device/A1B2C3D4E5F60708/event/up", Route("chirpstack", device="a1b2c3d4e5f60708")),
    ],
)
def test_route_accepts(topic: str, expected: Route) -> None:
    assert route(topic, "orchard") == expected


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("orchard/s/p1/d,1/telemetry", "bad_id"),
        ("orchard/s/p 1/d1/telemetry", "bad_id"),
        ('orchard/s"/p1/d1/telemetry', "bad_id"),
        ("orchard/s/p1/" + "x" * 65 + "/telemetry", "bad_id"),
        ("orchard/s/p1/d1/extra/telemetry", "bad_topic"),
        ("other/s/p1/d1/telemetry", "bad_topic"),
    ],
)
def test_route_refuses(topic: str, kind: str) -> None:
    with pytest.raises(Refused) as e:
        route(topic, "orchard")
    assert str(e.value).startswith(kind + ":")


def native(body: object) -> tuple[object, list[str]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_native(R, raw, NOW, TOL)


def test_full_message_becomes_points() -> None:
    t, problems = native(
        {"ts": "2026-04-01T02:10:00Z", "seq": 7, "readings": {"air_temp_c": 3.2, "rh_pct": 91,
         "soil_vwc_pct": [{"value": 31.5, "depth_cm": 20}, {"value": 35.0, "depth_cm": 40}]},
         "battery_v": 3.61, "rssi_dbm": -97}
    )
    assert problems == []
    points = to_points(t)  # type: ignore[arg-type]
    assert [(p.tags.get("depth_cm"), dict(p.fields)) for p in points] == [
        (None, {"air_temp_c": 3.2, "rh_pct": 91.0, "battery_v": 3.61, "rssi_dbm": -97.0, "seq": 7}),
        ("20", {"soil_vwc_pct": 31.5}),
        ("40", {"soil_vwc_pct": 35.0}),
    ]
    assert points[0].time_ns == 1_775_009_400_000_000_000
    assert points[0].tags == {"site": "s", "plot": "p1", "device": "d1"}


def test_missing_timestamp_uses_arrival_time_and_epoch_ms_is_accepted() -> None:
    assert native({"readings": {"rh_pct": 50}})[0].time_ns == NOW  # type: ignore[union-attr]
    assert native({"ts": NOW_MS - 5, "readings": {"rh_pct": 50}})[0].time_ns == NOW - 5_000_000  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "not_object"),
        (b'{"readings": {}}', "no_readings"),
        (b'{"readings": [1]}', "no_readings"),
        (b'{"readings": {"air_temp_c": 1}, "pad": "' + b"x" * 70_000 + b'"}', "too_large"),
        ({"ts": NOW_MS + 301_000, "readings": {"rh_pct": 50}}, "future_timestamp"),
        ({"ts": 1_700_000_000, "readings": {"rh_pct": 50}}, "bad_timestamp"),  # seconds, not ms
        ({"ts": "2026-04-01T02:10:00", "readings": {"rh_pct": 50}}, "bad_timestamp"),  # no zone
        ({"ts": True, "readings": {"rh_pct": 50}}, "bad_timestamp"),
    ],
)
def test_whole_message_refused(body: object, kind: str) -> None:
    with pytest.raises(Refused) as e:
        native(body)
    assert str(e.value).startswith(kind + ":")


@pytest.mark.parametrize(
    ("readings", "kind"),
    [
        ({"air_temp_c": 60.5}, "out_of_range"),
        ({"air_temp_c": -40.1}, "out_of_range"),
        ({"rh_pct": 100.01}, "out_of_range"),
        ({"wind_gust_ms": 76}, "out_of_range"),
        ({"air_temp_c": "3.2"}, "bad_reading"),
        ({"air_temp_c": True}, "bad_reading"),
        ({"air_temp_c": None}, "bad_reading"),
        ({"air_temp_c": [{"value": 1, "depth_cm": 10}]}, "bad_reading"),  # depth only for soil
        ({"soil_vwc_pct": [{"value": 30}]}, "bad_reading"),  # depth missing
        ({"soil_vwc_pct": [{"value": 130, "depth_cm": 20}]}, "out_of_range"),
        ({"temperature": 3.0}, "unknown_reading"),
        ({"battery_v": 3.0}, "unknown_reading"),  # battery goes beside readings, not in them
    ],
)
def test_bad_reading_refused_with_reason(readings: dict[str, object], kind: str) -> None:
    t, problems = native({"readings": readings})
    assert t is None
    assert len(problems) == 1 and problems[0].startswith(kind + ":"), problems


def test_good_readings_kept_beside_bad_ones() -> None:
    t, problems = native({"readings": {"air_temp_c": 12.0, "rh_pct": 140}})
    assert t is not None and dict(t.readings) == {"air_temp_c": 12.0}  # type: ignore[attr-defined]
    assert problems == ["out_of_range: rh_pct=140 outside 0..100 %"]


def test_edges_of_the_catalogue_are_accepted() -> None:
    t, problems = native({"readings": {"air_temp_c": -40, "rh_pct": 100, "rain_mm": 0, "solar_wm2": 1500}})
    assert problems == [] and t is not None


def test_chirpstack_uplink_mapped_to_registered_device() -> None:
    dev = Device("lora-07", "s", "p3", dev_eui="0102030405060708", extra={"t_air": "air_temp_c"})
    body = {"time": "2026-04-01T02:10:00+00:00", "fCnt": 42, "deviceInfo": {"devEui": "0102030405060708"},
            "object": {"t_air": 4.5, "humidity": 88, "battery": 3.3, "firmware": "1.2"},
            "rxInfo": [{"rssi": -101}, {"rssi": -95}]}
    t, problems = parse_chirpstack(orjson.dumps(body), dev, NOW, TOL)
    assert problems == []
    assert t is not None
    assert (t.site, t.plot, t.device, t.seq, t.battery_v, t.rssi_dbm) == ("s", "p3", "lora-07", 42, 3.3, -95.0)
    assert dict(t.readings) == {"air_temp_c": 4.5, "rh_pct": 88.0}


def test_chirpstack_without_decoded_object_refused() -> None:
    with pytest.raises(Refused, match="no_readings"):
        parse_chirpstack(b'{"data": "AQID"}', Device("x", "s", "p", dev_eui="01"), NOW, TOL)
