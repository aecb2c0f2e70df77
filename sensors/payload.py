"""Topic routing and payload validation: raw MQTT message in, validated Telemetry (and reasons) out.

Every refusal is a reason string ``"<kind>: <detail>"``; the kind is what operators count by.
A message with some good and some bad readings keeps the good ones and dead-letters itself with the reasons.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from orchard.catalogue import CATALOGUE, TELEMETRY
from orchard.models import Device, Point, Telemetry
from sensors.profiles import Decoded, DecodeError, Profile

MAX_PAYLOAD = 64 * 1024
# Matched whole (fullmatch: "$" would let a trailing newline through): letters (any script), digits, _ . : -; no
# line-protocol or quote characters.
_ID = re.compile(r"[\w.:-]{1,64}")
_MIN_TS_NS = 946_684_800 * 10**9  # 2000-01-01: anything older is a unit mistake (seconds sent as ms)

# Decoder output names seen in ChirpStack codecs, mapped to the catalogue; a device's own map wins.
CHIRPSTACK_ALIASES = {
    "temperature": "air_temp_c",
    "humidity": "rh_pct",
    "battery": "battery_v",
    "soil_moisture": "soil_vwc_pct",
    "soil_temperature": "soil_temp_c",
    "conductivity": "soil_ec_dsm",
    "leaf_wetness": "leaf_wetness_pct",
    "illuminance_wm2": "solar_wm2",
}


@dataclass(frozen=True, slots=True)
class Route:
    kind: str  # telemetry | status | chirpstack (an up event) | chirpstack_<status|join|log> | tts (an uplink)
    site: str = ""
    plot: str = ""
    device: str = ""


class Refused(Exception):
    """The whole message is refused; str(self) is the reason."""


def route(topic: str, prefix: str) -> Route:
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == prefix and parts[4] in ("telemetry", "status"):
        _, site, plot, device, kind = parts
        for what, value in (("site", site), ("plot", plot), ("device", device)):
            if not _ID.fullmatch(value):
                raise Refused(f"bad_id: {what} {value[:80]!r} must be 1-64 letters, digits or _ . : -")
        return Route(kind, site, plot, device)
    if len(parts) == 6 and parts[0] == "application" and parts[2] == "device" and parts[4] == "event":
        if parts[5] == "up":
            return Route("chirpstack", device=parts[3].lower())
        if parts[5] in ("status", "join", "log"):
            return Route(f"chirpstack_{parts[5]}", device=parts[3].lower())
        return Route("chirpstack_other", device=parts[3].lower())  # ack, txack, location, integration: not ours
    if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices" and parts[4] == "up":
        return Route("tts", device=parts[3])  # The Things Stack v3: <app>@<tenant>, the end device's id
    raise Refused(f"bad_topic: {topic[:200]!r} is not <prefix>/<site>/<plot>/<device>/telemetry|status")


def _load(payload: bytes | bytearray) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise Refused(f"too_large: {len(payload)} bytes, limit {MAX_PAYLOAD}")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise Refused(f"bad_json: {e}") from None
    if not isinstance(body, dict):
        raise Refused(f"not_object: payload is a JSON {type(body).__name__}, expected an object")
    return body


def parse_time(ts: object, now_ns: int, future_tolerance_ns: int) -> int:
    if isinstance(ts, bool):
        raise Refused(f"bad_timestamp: {ts!r}")
    if isinstance(ts, int):
        t = ts * 1_000_000  # epoch milliseconds
    elif isinstance(ts, str):
        try:
            d = datetime.fromisoformat(ts)
        except ValueError:
            raise Refused(f"bad_timestamp: {ts[:60]!r} is not ISO 8601 or epoch milliseconds") from None
        if d.tzinfo is None:
            raise Refused(f"bad_timestamp: {ts[:60]!r} has no time zone (use Z or +08:00)")
        t = int(d.timestamp() * 1e6) * 1000
    else:
        raise Refused(f"bad_timestamp: {str(ts)[:60]!r} is not ISO 8601 or epoch milliseconds")
    if t > now_ns + future_tolerance_ns:
        raise Refused(f"future_timestamp: {ts} is {(t - now_ns) / 1e9:.0f} s ahead of the ingest clock")
    if t < _MIN_TS_NS:
        raise Refused(f"bad_timestamp: {ts} is before 2000 (seconds sent instead of milliseconds?)")
    return t


_READINGS = {k: v for k, v in CATALOGUE.items() if k not in ("battery_v", "rssi_dbm")}


def _number(name: str, v: object, problems: list[str]) -> float | None:
    spec = CATALOGUE[name]
    t = type(v)
    if t is not float and t is not int:  # bool is a subclass of int, so compare types exactly
        problems.append(f"bad_reading: {name}={str(v)[:40]!r} is not a number")
        return None
    if spec.low <= v <= spec.high:  # type: ignore[operator]  # NaN fails both comparisons
        return float(v)  # type: ignore[arg-type]
    problems.append(f"out_of_range: {name}={str(v)[:40]} outside {spec.low:g}..{spec.high:g} {spec.unit}")
    return None


def check_readings(raw: object, problems: list[str]) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    if type(raw) is not dict or not raw:
        raise Refused("no_readings: 'readings' must be a non-empty object of name: value")
    values: dict[str, float] = {}
    depths: dict[int, dict[str, float]] = {}
    for name, v in raw.items():
        spec = _READINGS.get(name)
        if spec is None:
            problems.append(f"unknown_reading: {str(name)[:40]!r} is not in the catalogue")
            continue
        t = type(v)
        if t is float or t is int:  # the common case, inline
            if spec.low <= v <= spec.high:
                values[name] = float(v)
            else:
                problems.append(f"out_of_range: {name}={str(v)[:40]} outside {spec.low:g}..{spec.high:g} {spec.unit}")
            continue
        if t is dict or t is list:
            if not spec.depth:
                problems.append(f"bad_reading: {name} takes a plain number, not a depth list")
                continue
            for item in v if t is list else [v]:
                depth = item.get("depth_cm") if type(item) is dict else None
                if type(depth) is not int or not 0 <= depth <= 500:
                    problems.append(f"bad_reading: {name} needs {{'value': x, 'depth_cm': 0..500}}")
                    continue
                f = _number(name, item.get("value"), problems)
                if f is not None:
                    depths.setdefault(depth, {})[name] = f
            continue
        problems.append(f"bad_reading: {name}={str(v)[:40]!r} is not a number")
    return values, depths


def _optional(body: Mapping[str, Any], name: str, problems: list[str]) -> float | None:
    v = body.get(name)
    return None if v is None else _number(name, v, problems)


def parse_native(
    r: Route, payload: bytes | bytearray, received_ns: int, future_tolerance_ns: int
) -> tuple[Telemetry | None, list[str]]:
    """The telemetry contract (docs/architecture.md "Data contracts"). Returns what can be stored and the reasons
    for what cannot."""
    body = _load(payload)
    problems: list[str] = []
    readings, depths = check_readings(body.get("readings"), problems)
    ts = body.get("ts")
    t = received_ns if ts is None else parse_time(ts, received_ns, future_tolerance_ns)
    seq = body.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63):
        problems.append(f"bad_reading: seq={str(seq)[:40]!r} is not a non-negative integer")
        seq = None
    battery, rssi = _optional(body, "battery_v", problems), _optional(body, "rssi_dbm", problems)
    if not readings and not depths and battery is None and rssi is None:
        return None, problems or ["no_readings: nothing valid to store"]
    return Telemetry(r.site, r.plot, r.device, t, readings, depths, seq, battery, rssi), problems


def from_profile(site: str, plot: str, device: str, time_ns: int, d: Decoded, seq: int | None = None,
                 rssi: float | None = None) -> tuple[Telemetry | None, list[str]]:
    """What a device profile decoded, as telemetry: battery_v beside the readings, battery_pct among them."""
    readings = dict(d.readings)
    battery = readings.pop("battery_v", None)
    if not readings and not d.depths and battery is None:
        return None, d.problems or ["no_readings: the profile found no reading in the payload"]
    return Telemetry(site, plot, device, time_ns, readings, d.depths, seq, battery, rssi), list(d.problems)


def parse_profiled(r: Route, profile: Profile, payload: bytes | bytearray, received_ns: int
                   ) -> tuple[Telemetry | None, Decoded]:
    """A device's own payload on its telemetry topic, decoded by its profile: a Modbus frame a DTU forwards, or a
    vendor's JSON object. Refused (with the reason) when the profile cannot decode it at all."""
    try:
        decoded = profile.decode(bytes(payload) if profile.kind == "modbus" else _load(payload))
    except DecodeError as e:
        raise Refused(str(e)) from None
    telemetry, _ = from_profile(r.site, r.plot, r.device, received_ns, decoded)
    return telemetry, decoded


class MacOnly(Exception):
    """A LoRaWAN frame without application data (fPort 0: MAC commands only; or no payload): counted, not a
    dead letter."""


CHIRPSTACK_JSON = ("chirpstack_protobuf: ChirpStack sends its events as Protobuf, ingest reads JSON: set "
                   "json=true under [integration.mqtt] in chirpstack.toml (ChirpStack v4) and restart ChirpStack")


def chirpstack_event(payload: bytes | bytearray) -> dict[str, Any]:
    """A ChirpStack v4 integration event as JSON; the one clear error when ChirpStack is set to Protobuf."""
    try:
        return _load(payload)
    except Refused as e:
        if str(e).startswith("bad_json") and payload[:1] == b"\x0a":  # protobuf: field 1, length-delimited
            raise Refused(CHIRPSTACK_JSON) from None
        raise


def parse_chirpstack(
    payload: bytes | bytearray, device: Device, received_ns: int, future_tolerance_ns: int,
    profile: Profile | None = None, unmapped: list[str] | None = None, skew: list[int] | None = None,
) -> tuple[Telemetry | None, list[str]]:
    """A ChirpStack v4 `up` event with a decoded `object`, for a device registered with this devEUI; through the
    device's profile when it has one (the vendor's field names), else by the catalogue's own names. MacOnly for
    a frame that carries no application data."""
    body = chirpstack_event(payload)
    if body.get("fPort") == 0 or ("object" not in body and not body.get("data")):
        raise MacOnly()
    obj = body.get("object")
    if not isinstance(obj, dict):
        raise Refused("no_readings: ChirpStack uplink without a decoded 'object' (set a codec on the profile)")
    fcnt = body.get("fCnt")
    seq = fcnt if isinstance(fcnt, int) and not isinstance(fcnt, bool) and fcnt >= 0 else None
    problems: list[str] = []
    rssi = _strongest([rx.get("rssi") for rx in body.get("rxInfo") or [] if isinstance(rx, dict)], problems)
    return _object(device, obj, uplink_time(body, received_ns, skew), seq, rssi, profile, unmapped, problems)


def _object(device: Device, obj: Mapping[str, Any], t: int, seq: int | None, rssi: float | None,
            profile: Profile | None, unmapped: list[str] | None, problems: list[str],
            ) -> tuple[Telemetry | None, list[str]]:
    """A network server's decoded object as telemetry: through the device's profile, or by the catalogue's own
    names (and the device's aliases) when it has none."""
    if profile is not None:
        try:
            decoded = profile.decode(obj)
        except DecodeError as e:
            raise Refused(str(e)) from None
        if unmapped is not None:
            unmapped.extend(decoded.unmapped)
        return from_profile(device.site, device.plot, device.device, t, decoded, seq, rssi)
    names = {**CHIRPSTACK_ALIASES, **device.extra}
    readings = {names.get(k, k): v for k, v in obj.items() if names.get(k, k) in CATALOGUE}
    battery = readings.pop("battery_v", None)
    found, depths = check_readings(readings, problems) if readings else ({}, {})
    bat = None if battery is None else _number("battery_v", battery, problems)
    if not found and not depths and bat is None:
        return None, problems or ["no_readings: the decoded object has no catalogue reading"]
    return Telemetry(device.site, device.plot, device.device, t, found, depths, seq, bat, rssi), problems


def _strongest(rssis: list[object], problems: list[str]) -> float | None:
    """The strongest gateway's signal of an uplink."""
    values = [v for v in rssis if isinstance(v, int | float) and not isinstance(v, bool)]
    return _number("rssi_dbm", max(values), problems) if values else None


MAX_CLOCK_SKEW_NS = 5 * 60 * 1_000_000_000


def uplink_time(body: Mapping[str, Any], received_ns: int, skew: list[int] | None = None) -> int:
    """When a ChirpStack uplink was measured: its `time` (the gateway's clock), unless that is more than 5 minutes
    off the network server's own reception time (rxInfo nsTime; without it, ingest's receipt) - a gateway whose
    clock was never set (GPS-less, 1970 or a year off) must not file readings at the wrong hour. The skew in
    seconds is appended to `skew` when it is replaced, so the device can say so."""
    ns_times = []
    for rx in body.get("rxInfo") or []:
        if isinstance(rx, dict) and isinstance(rx.get("nsTime"), str):
            with contextlib.suppress(Refused):
                ns_times.append(parse_time(rx["nsTime"], 2**62, 0))
    reference = min(ns_times) if ns_times else received_ns
    at = body.get("time")
    if at is None:
        return reference
    try:
        t = parse_time(at, 2**62, 0)
    except Refused:
        t = None
    if t is None or abs(t - reference) > MAX_CLOCK_SKEW_NS:
        if skew is not None:
            skew.append(0 if t is None else round((t - reference) / 1e9))
        return reference
    return t


def parse_chirpstack_status(payload: bytes | bytearray, device: Device, received_ns: int,
                            ) -> tuple[Telemetry | None, list[str]]:
    """A ChirpStack v4 `status` event (the device's answer to DevStatusReq): its battery level in percent (unless
    the device says it is on external power or cannot measure it) and its link margin in dB."""
    body = chirpstack_event(payload)
    problems: list[str] = []
    values: dict[str, float] = {}
    level = body.get("batteryLevel")
    on_battery = not (body.get("externalPowerSource") or body.get("batteryLevelUnavailable"))
    if on_battery and level is not None and (pct := _number("battery_pct", level, problems)) is not None:
        values["battery_pct"] = pct
    margin = body.get("margin")
    if margin is not None and (db := _number("link_margin_db", margin, problems)) is not None:
        values["link_margin_db"] = db
    if problems and not values:
        raise Refused("; ".join(problems))
    return (Telemetry(device.site, device.plot, device.device, received_ns, values) if values else None), problems


def parse_tts(payload: bytes | bytearray, device: Device, received_ns: int, future_tolerance_ns: int,
              profile: Profile | None = None, unmapped: list[str] | None = None,
              ) -> tuple[Telemetry | None, list[str]]:
    """A The Things Stack v3 uplink (`v3/<app>/devices/<id>/up`): `uplink_message.decoded_payload` through the
    device's profile (or the catalogue's own names)."""
    body = _load(payload)
    up = body.get("uplink_message")
    if not isinstance(up, dict):
        raise Refused("no_uplink: a The Things Stack message without uplink_message (subscribe to .../up only)")
    if up.get("f_port") in (0, None) and "decoded_payload" not in up:
        raise MacOnly()
    obj = up.get("decoded_payload")
    if not isinstance(obj, dict):
        raise Refused("no_readings: The Things Stack uplink without decoded_payload (set a payload formatter)")
    at = up.get("received_at") or body.get("received_at")
    t = received_ns if at is None else parse_time(at, received_ns, future_tolerance_ns)
    fcnt = up.get("f_cnt")
    seq = fcnt if isinstance(fcnt, int) and not isinstance(fcnt, bool) and fcnt >= 0 else None
    problems: list[str] = []
    rssi = _strongest([rx.get("rssi") for rx in up.get("rx_metadata") or [] if isinstance(rx, dict)], problems)
    return _object(device, obj, t, seq, rssi, profile, unmapped, problems)


def to_points(t: Telemetry) -> list[Point]:
    """One point for the plain readings (+ battery, rssi, seq) and one per soil depth."""
    tags = {"site": t.site, "plot": t.plot, "device": t.device}
    plain: dict[str, float | int] = dict(t.readings)
    if t.battery_v is not None:
        plain["battery_v"] = t.battery_v
    if t.rssi_dbm is not None:
        plain["rssi_dbm"] = t.rssi_dbm
    if t.seq is not None and (plain or not t.depths):
        plain["seq"] = t.seq
    points = [Point(TELEMETRY, tags, plain, t.time_ns)] if plain else []
    for depth in sorted(t.depths):
        points.append(Point(TELEMETRY, {**tags, "depth_cm": str(depth)}, dict(t.depths[depth]), t.time_ns))
    return points
