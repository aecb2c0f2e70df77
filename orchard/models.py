"""What crosses a boundary between services: frozen, slotted dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FieldValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Point:
    """One time-series point, in the store's terms (InfluxDB's data model)."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A validated telemetry message: one device, one instant, several canonical readings.

    Plain dicts rather than an object per reading: ingest builds tens of thousands of these a second.
    """

    site: str
    plot: str
    device: str
    time_ns: int
    readings: Mapping[str, float]  # catalogue name -> value
    depths: Mapping[int, Mapping[str, float]] = field(default_factory=dict)  # depth_cm -> soil readings
    seq: int | None = None
    battery_v: float | None = None
    rssi_dbm: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A payload ingest refused, kept with why, so nothing is dropped silently."""

    received_ns: int
    topic: str
    payload: bytes
    reason: str
    device: str | None = None
    site: str | None = None
    plot: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """A registered field device and what ingest last heard from it."""

    device: str
    site: str
    plot: str
    status: str = "approved"  # approved | pending | rejected
    kind: str = ""
    dev_eui: str | None = None
    online: bool | None = None
    last_seen_ns: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
