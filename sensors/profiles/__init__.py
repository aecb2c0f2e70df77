"""Device profiles: how one sensor model's payload maps to the canonical readings, as data.

One TOML file per model in this folder (a new model is one new file, no code): its id, vendor and model, where
its payload format is published, which field of the payload is which reading (with unit conversion, sentinel
values that mean "no probe", soil depth per channel), the fields dropped on purpose, and the vendor's own example
payloads with the readings they must give (tests/sensors/test_profiles.py runs every example of every profile).

Two kinds:
- `decoded`: the object a LoRaWAN network server's codec made of the uplink (ChirpStack v4 `object`, The Things
  Stack `decoded_payload`), usually the vendor's own JavaScript decoder. Fields are found by path:
  `soil_temperature` (a number, a number sent as a string, or a `{value, unit}` object), `a.b` (nested),
  `messages[measurementId=4102].measurementValue` (a list, searched through nested lists, for the element whose
  key has that value, as SenseCAP sends it).
- `modbus`: a raw Modbus RTU response frame (function 3 or 4) that a 4G DTU polled from an RS485 sensor and
  forwards over MQTT, as bytes or as hex text; the CRC is checked and each holding register mapped by address,
  scale and signedness (see modbus.py).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from orchard.catalogue import CATALOGUE
from orchard.settings import Section

HERE = Path(__file__).resolve().parent
_ID_KEYS = ("measurementId", "channel", "type", "name")  # how list elements name themselves in `unmapped`


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the field."""


class DecodeError(ValueError):
    """A payload the profile cannot decode at all (not an object, bad Modbus CRC); the text is the reason."""


def _canonical(reading: str) -> str:
    if reading not in CATALOGUE:
        raise ValueError(f"{reading!r} is not a canonical reading; known: {', '.join(CATALOGUE)}")
    return reading


class FieldMap(Section):
    """One field of the payload and the canonical reading it is."""

    path: str = Field(description="Where the value is: `name`, `a.b`, or `list[key=value].field`.")
    reading: str = Field(description="The canonical reading (orchard/catalogue.py) it is.")
    scale: float = Field(1.0, description="Multiply by this (uS/cm to dS/m: 0.001; mV to V: 0.001; a fraction "
                                          "to percent: 100) ...")
    offset: float = Field(0.0, description="... then add this.")
    units: dict[str, float] = Field(default_factory=dict, description="For `{value, unit}` fields: the scale for "
                                    "each unit the vendor may send (instead of `scale`); another unit is refused.")
    missing: tuple[float, ...] = Field((), description="Values (as the payload gives them, before scaling) that "
                                       "mean \"no probe\" or \"no reading\": 327.67 for 0x7FFF, 65535, -3276.8.")
    depth_cm: int | None = Field(None, ge=0, le=500, description="Soil depth of this channel (soil readings).")

    @field_validator("reading")
    @classmethod
    def _known(cls, v: str) -> str:
        return _canonical(v)

    @model_validator(mode="after")
    def _depth(self) -> FieldMap:
        if self.depth_cm is not None and not CATALOGUE[self.reading].depth:
            raise ValueError(f"{self.reading} has no soil depth")
        return self


class Register(Section):
    """One Modbus register (or two, for a 32-bit value) and the reading it is."""

    address: int = Field(ge=0, le=0xFFFF, description="Register address, as the sensor's manual numbers it.")
    reading: str = Field(description="The canonical reading it is.")
    scale: float = Field(1.0, description="Multiply the register's integer by this (0.1 for tenths).")
    offset: float = Field(0.0, description="... then add this.")
    signed: bool = Field(False, description="Two's complement (temperatures below zero).")
    words: Literal[1, 2] = Field(1, description="2 for a 32-bit value in two registers, high word first.")
    missing: tuple[int, ...] = Field((), description="Raw integers that mean \"no reading\" (0x7FFF, 0xFFFF).")
    depth_cm: int | None = Field(None, ge=0, le=500, description="Soil depth (soil readings).")

    @field_validator("reading")
    @classmethod
    def _known(cls, v: str) -> str:
        return _canonical(v)


class Modbus(Section):
    """What the DTU polls: one read of consecutive registers from one slave."""

    slave: int | None = Field(None, ge=1, le=247, description="The sensor's address; None accepts any.")
    function: Literal[3, 4] = Field(3, description="3 read holding registers, 4 read input registers.")
    start: int = Field(0, ge=0, le=0xFFFF, description="Address of the first register the DTU asks for.")
    registers: list[Register] = Field(description="The registers in the answer that are readings.")


class Example(Section):
    """One of the vendor's published examples and what it must give."""

    description: str = Field(description="What it shows.")
    source: str = Field(description="Where the vendor publishes it (repository and file, or manual and page).")
    payload: dict[str, Any] | str = Field(description="The decoded object (decoded) or the frame in hex (modbus).")
    readings: dict[str, float] = Field(default_factory=dict, description="The plain readings it gives.")
    depths: dict[str, dict[str, float]] = Field(default_factory=dict, description="Soil readings by depth_cm.")
    refused: list[str] = Field(default_factory=list, description="Readings it carries that are refused (out of "
                               "range, as a sensor in air gives; a register missing from the answer): each named "
                               "in one problem.")
    ignored: list[str] = Field(default_factory=list, description="Fields dropped on purpose.")
    unmapped: list[str] = Field(default_factory=list, description="Fields the profile does not know.")
    error: str | None = Field(None, description="The reason it cannot be decoded at all (a bad CRC).")


class Profile(Section):
    """One sensor model."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="`vendor-model`, as devices name it.")
    vendor: str = Field(description="Maker.")
    model: str = Field(description="Model, as on the label.")
    kind: Literal["decoded", "modbus"] = Field(description="See the package's description.")
    description: str = Field(description="What it measures, in a line (Chinese first).")
    source: str = Field(description="Where the payload format and the decoder are published.")
    fields: list[FieldMap] = Field(default_factory=list, description="decoded: the fields that are readings.")
    modbus: Modbus | None = Field(None, description="modbus: what is polled and which register is which.")
    ignore: list[str] = Field(default_factory=list, description="Paths dropped on purpose (counters, ids, the "
                              "decoder's bookkeeping); a path covers everything under it, `*` matches anything "
                              "(`messages[*].type`).")
    examples: list[Example] = Field(min_length=1, description="The vendor's published examples.")

    @model_validator(mode="after")
    def _kind(self) -> Profile:
        if self.kind == "modbus" and (self.modbus is None or self.fields):
            raise ValueError("a modbus profile has a [modbus] table and no fields")
        if self.kind == "decoded" and (self.modbus is not None or not self.fields):
            raise ValueError("a decoded profile has fields and no [modbus] table")
        return self

    @property
    def readings(self) -> list[str]:
        maps = self.modbus.registers if self.modbus else self.fields
        return sorted({m.reading for m in maps})

    def decode(self, payload: Mapping[str, Any] | bytes | str) -> Decoded:
        """The canonical readings in a payload. DecodeError when it cannot be decoded at all."""
        if self.kind == "modbus":
            from sensors.profiles.modbus import decode_frame

            assert self.modbus is not None
            return decode_frame(self.modbus, payload)
        if not isinstance(payload, Mapping):
            raise DecodeError(f"no_object: profile {self.id} decodes a JSON object, not {type(payload).__name__}")
        return _decode_object(self, payload)


@dataclass(slots=True)
class Decoded:
    """What a profile made of one payload."""

    readings: dict[str, float] = field(default_factory=dict)
    depths: dict[int, dict[str, float]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def put(self, reading: str, value: float, depth_cm: int | None, where: str) -> None:
        """Keep the value if the catalogue says it is possible; a problem naming it when not."""
        spec = CATALOGUE[reading]
        if not math.isfinite(value) or not spec.low <= value <= spec.high:
            self.problems.append(f"out_of_range: {reading}={value:g} ({where}) outside {spec.low:g}..{spec.high:g} "
                                 f"{spec.unit}")
            return
        value = round(value, 6)
        if spec.depth and depth_cm is not None:
            self.depths.setdefault(depth_cm, {})[reading] = value
        else:
            self.readings[reading] = value

    def as_json(self) -> dict[str, Any]:
        """The shape `orchard devices decode` prints: soil readings as lists of {value, depth_cm}."""
        out: dict[str, Any] = dict(self.readings)
        for depth in sorted(self.depths):
            for name, value in self.depths[depth].items():
                out.setdefault(name, []).append({"value": value, "depth_cm": depth})
        battery: dict[str, Any] = {k: out.pop(k) for k in ("battery_v", "battery_pct") if k in out}
        return {"readings": out, **battery, "ignored": self.ignored, "unmapped": self.unmapped,
                "problems": self.problems}


# -- decoded objects ------------------------------------------------------------------------------------------------
def _segments(path: str) -> list[tuple[str, str | None, str | None]]:
    """`messages[measurementId=4102].measurementValue` -> [("messages", "measurementId", "4102"),
    ("measurementValue", None, None)]."""
    out: list[tuple[str, str | None, str | None]] = []
    for part in path.split("."):
        if "[" in part and part.endswith("]"):
            name, selector = part[:-1].split("[", 1)
            key, _, want = selector.partition("=")
            out.append((name, key, want))
        else:
            out.append((part, None, None))
    return out


def _elements(items: object) -> Iterator[object]:
    """The elements of a list, nested lists flattened (SenseCAP S2120 sends a list of lists)."""
    if isinstance(items, list):
        for item in items:
            yield from _elements(item)
    else:
        yield items


def _find(obj: object, path: str) -> tuple[bool, object]:
    for name, key, want in _segments(path):
        if not isinstance(obj, Mapping) or name not in obj:
            return False, None
        obj = obj[name]
        if key is not None:
            obj = next((e for e in _elements(obj) if isinstance(e, Mapping) and str(e.get(key)) == want), None)
            if obj is None:
                return False, None
    return True, obj


def _leaves(obj: object, prefix: str = "") -> Iterator[str]:
    """Every leaf of a decoded object by path, a `{value, unit}` object counting as one leaf; list elements named
    by their id key when they have one (`messages[measurementId=4099]`)."""
    if isinstance(obj, Mapping):
        if "value" in obj and not isinstance(obj["value"], Mapping | list):
            yield prefix
            return
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, item in enumerate(_elements(obj)):
            key = next((k for k in _ID_KEYS if isinstance(item, Mapping) and k in item), None)
            name = f"{prefix}[{key}={item[key]}]" if key is not None else f"{prefix}[{i}]"  # type: ignore[index]
            if key is not None and isinstance(item, Mapping):
                yield from (f"{name}.{leaf[len(name) + 1:]}" if leaf.startswith(name + ".") else leaf
                            for leaf in _leaves({k: v for k, v in item.items() if k != key}, name))
            else:
                yield from _leaves(item, name)
    else:
        yield prefix


@cache
def _pattern(path: str) -> re.Pattern[str]:
    """A path as a pattern: `*` matches any run of characters (`messages[*].type`); it covers the leaf itself and
    everything under it."""
    return re.compile(re.escape(path).replace(r"\*", ".*") + r"(?:[.\[].*)?")


def _covers(path: str, leaf: str) -> bool:
    return _pattern(path).fullmatch(leaf) is not None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _decode_object(profile: Profile, obj: Mapping[str, Any]) -> Decoded:
    out = Decoded()
    for f in profile.fields:
        found, raw = _find(obj, f.path)
        if not found:
            continue
        unit = None
        if isinstance(raw, Mapping):
            unit, raw = raw.get("unit"), raw.get("value")
        value = _number(raw)
        if value is None:
            out.problems.append(f"bad_reading: {f.path}={str(raw)[:40]!r} is not a number")
            continue
        if value in f.missing:
            out.ignored.append(f"{f.path} (no probe: {raw})")
            continue
        scale = f.scale
        if f.units:
            if unit not in f.units:
                out.problems.append(f"bad_unit: {f.path} in {unit!r}, expected one of {', '.join(f.units)}")
                continue
            scale = f.units[str(unit)]
        out.put(f.reading, value * scale + f.offset, f.depth_cm, f.path)
    mapped = [f.path for f in profile.fields]
    for leaf in _leaves(obj):
        if any(_covers(p, leaf) or _covers(leaf, p) for p in mapped):
            continue
        if any(_covers(p, leaf) for p in profile.ignore):
            if leaf not in out.ignored:
                out.ignored.append(leaf)
        else:
            out.unmapped.append(leaf)
    return out


# -- the shipped profiles -------------------------------------------------------------------------------------------
def load(path: Path) -> Profile:
    try:
        return Profile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path.name}: not TOML: {e}") from None
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ProfileError(f"{path.name}: {detail}") from None


@cache
def profiles(folder: Path = HERE) -> dict[str, Profile]:
    """Every profile of the folder by id; a file whose name is not its id is an error (one file per model)."""
    out: dict[str, Profile] = {}
    for path in sorted(folder.glob("*.toml")):
        p = load(path)
        if p.id != path.stem:
            raise ProfileError(f"{path.name}: its id is {p.id!r}; name the file {p.id}.toml")
        out[p.id] = p
    return out


def profile(profile_id: str) -> Profile:
    found = profiles().get(profile_id)
    if found is None:
        raise ProfileError(f"no device profile {profile_id!r}; `orchard devices profiles` lists them")
    return found


def decode_message(p: Profile, data: bytes) -> tuple[str, Decoded]:
    """What `orchard devices decode` reads: a ChirpStack v4 up event (its `object`), a The Things Stack v3 uplink
    (`uplink_message.decoded_payload`), a native telemetry message (`readings`, checked against the catalogue as
    ingest checks it), a raw decoded object, or, for a modbus profile, the frame itself. Returns what it was and
    the readings."""
    import orjson

    if p.kind == "modbus":
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return "modbus frame", p.decode(data)
        return "modbus frame", p.decode(body if isinstance(body, Mapping) else str(body))
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise DecodeError(f"not_json: the payload is not JSON ({e})") from None
    if not isinstance(body, Mapping):
        raise DecodeError("no_object: the payload is JSON but not an object")
    if isinstance(body.get("object"), Mapping) and "deviceInfo" in body:
        return "chirpstack v4 up", p.decode(body["object"])
    if "object" in body and "deviceInfo" in body:
        raise DecodeError("no_object: a ChirpStack uplink without a decoded 'object': give the device profile a "
                          "codec in ChirpStack (Device profiles > Codec)")
    uplink = body.get("uplink_message")
    if isinstance(uplink, Mapping):
        decoded = uplink.get("decoded_payload")
        if not isinstance(decoded, Mapping):
            raise DecodeError("no_object: a The Things Stack uplink without decoded_payload: set a payload "
                              "formatter on the device or application")
        return "the things stack v3 up", p.decode(decoded)
    if isinstance(body.get("readings"), Mapping):
        from sensors.payload import Refused, check_readings

        out = Decoded()
        try:
            out.readings, out.depths = check_readings(body["readings"], out.problems)
        except Refused as e:
            raise DecodeError(str(e)) from None
        for name in ("battery_v",):
            if isinstance(body.get(name), int | float):
                out.put(name, float(body[name]), None, name)
        return "native telemetry", out
    return "decoded object", p.decode(body)
