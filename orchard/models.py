"""What crosses a boundary between services: frozen, slotted dataclasses, their states as StrEnums (equal to
the strings stored and sent), their mappings read-only."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar, NoReturn

FieldValue = float | int | bool | str


class Severity(StrEnum):
    """How bad an alarm is, in rising order; compared by `rank`."""

    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self)


SEVERITIES = tuple(Severity)  # in rising order


class DeviceStatus(StrEnum):
    """A device in the registry: approved (its readings are stored), new (registered by its first message in
    `accept` mode, its readings stored), pending (held until someone approves it, in `hold` mode) or rejected
    (its messages are dead letters)."""

    APPROVED = "approved"
    NEW = "new"
    PENDING = "pending"
    REJECTED = "rejected"


class AlarmAction(StrEnum):
    """One line of an alarm's audit trail."""

    RAISED = "raised"
    SEVERITY = "severity"
    CLEARED = "cleared"
    ACKED = "acked"
    ASSIGNED = "assigned"
    COMMENTED = "commented"
    EVIDENCE = "evidence"  # a camera snapshot attached
    HANDLED = "handled"  # the farmer says it is dealt with on the plot (the alarm stays until its rule clears it)


class FrozenMap(dict[str, Any]):
    """A mapping that cannot change after it is made, for the frozen models below: a frozen dataclass holding a
    plain dict could still be changed in place by whoever holds it. Serialises (orjson, json, pickle) as a dict."""

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("this mapping is read-only: copy it with dict(...) to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[dict[str, Any]]]:
        return type(self), (dict(self),)


def _frozen(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, FrozenMap):
            object.__setattr__(obj, name, FrozenMap(value))


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
    payload_size: int | None = None  # the whole payload's, when `payload` is only its first part
    payload_sha256: str | None = None

    def capped(self, limit: int) -> DeadLetter:
        """The letter with at most `limit` bytes of its payload, and the whole payload's size and SHA-256."""
        if len(self.payload) <= limit:
            return self
        return replace(self, payload=self.payload[:limit], payload_size=len(self.payload),
                       payload_sha256=hashlib.sha256(self.payload).hexdigest())


@dataclass(frozen=True, slots=True)
class Device:
    """A registered field device and what ingest last heard from it."""

    device: str
    site: str
    plot: str
    status: DeviceStatus = DeviceStatus.APPROVED
    kind: str = ""
    dev_eui: str | None = None
    online: bool | None = None
    last_seen_ns: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None  # the sensor model's profile id (sensors/profiles/)
    unmapped: tuple[str, ...] = ()  # payload fields the profile does not know, as last reported
    clock_skew_s: int | None = None  # its gateway's clock was this far off: filed at the server's time instead

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", DeviceStatus(self.status))
        _frozen(self, "extra")


# Alarm types about a device's health rather than the crop: they start with the adviser, not the farmer, and do
# not colour a plot on the map.
DEVICE_TYPES = frozenset({"device_offline", "low_battery", "stuck_value", "spike", "neighbour_disagreement",
                          "anomaly", "decode_failed"})


@dataclass(frozen=True, slots=True)
class Signal:
    """What a rule says about one source right now: raise (or keep) an alarm of this type and severity."""

    site: str
    source: str  # "plot:p01", "device:ws-p01"
    type: str
    severity: Severity
    message: str  # i18n key of the alarm's text
    details: Mapping[str, object] = field(default_factory=dict)  # values, thresholds and the text's parameters
    plot: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        _frozen(self, "details")


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm: active until cleared, unacknowledged until someone acks it (the two are independent)."""

    id: int
    site: str
    source: str
    type: str
    severity: Severity
    plot: str | None
    device: str | None
    started_ns: int
    updated_ns: int
    cleared_ns: int | None
    acked_ns: int | None
    acked_by: str | None
    assignee: str | None
    message: str
    details: Mapping[str, object]

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        _frozen(self, "details")

    @property
    def active(self) -> bool:
        return self.cleared_ns is None

    @property
    def acked(self) -> bool:
        return self.acked_ns is not None


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One line of an alarm's audit trail."""

    alarm_id: int
    time_ns: int
    actor: str
    action: AlarmAction
    detail: Mapping[str, object]

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", AlarmAction(self.action))
        _frozen(self, "detail")


@dataclass(frozen=True, slots=True)
class Silence:
    """A maintenance window: matching alarms are not raised while it lasts. None matches anything."""

    id: int
    plot: str | None
    device: str | None
    rule: str | None
    starts_ns: int
    ends_ns: int
    reason: str
    created_by: str

    def matches(self, plot: str | None, device: str | None, rule: str, now_ns: int) -> bool:
        return (self.starts_ns <= now_ns < self.ends_ns and self.plot in (None, plot)
                and self.device in (None, device) and self.rule in (None, rule))


# -- cameras ------------------------------------------------------------------------------------------------
CAMERA_MEASUREMENT = "camera"
# Ingest's counters every stats period, tagged client_id: received, stored, spooled, rejected, ..., spool_files, and
# lag_p50_s / lag_max_s (receipt minus the device's timestamp) when readings carried one. Analytics reads them.
INGEST_STATS = "ingest_stats"
# A camera's health, worst first: what the dashboard badge says and which alarm the rule pack raises.
CAMERA_HEALTH = ("unreachable", "dark", "frozen", "low_fps", "blurred", "ok")
CAMERA_TYPES = frozenset({"camera_offline", "camera_dark", "camera_frozen", "camera_low_fps", "camera_blurred"})
DEVICE_TYPES = DEVICE_TYPES | CAMERA_TYPES


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """What the cameras service says about one camera after one snapshot attempt (a point in the store).

    `since_ns` is when the current health began; `intrusion` names the zone motion was seen in at night.
    """

    site: str
    plot: str
    camera: str
    time_ns: int
    health: str
    since_ns: int
    latency_ms: float
    bytes: int = 0
    brightness: float | None = None
    contrast: float | None = None
    sharpness: float | None = None
    motion: float | None = None  # % of the unmasked frame that moved
    objects: int = 0  # moving objects at least min_area_pct large
    intrusion: str = ""  # the zone's name, when this snapshot saw an intrusion
    snapshot_ns: int | None = None  # the stored snapshot, when there is one
    error: str = ""

    FIELDS: ClassVar[tuple[str, ...]] = ("health", "since_ns", "latency_ms", "bytes", "brightness", "contrast",
                                         "sharpness", "motion", "objects", "intrusion", "snapshot_ns", "error")

    def point(self) -> Point:
        fields = {k: v for k in self.FIELDS if (v := getattr(self, k)) is not None}
        return Point(CAMERA_MEASUREMENT, {"site": self.site, "plot": self.plot, "camera": self.camera}, fields,
                     self.time_ns)

    @classmethod
    def from_values(cls, tags: Mapping[str, str], time_ns: int, values: Mapping[str, FieldValue]) -> CameraStatus:
        def num(k: str) -> float | None:
            v = values.get(k)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        def whole(k: str) -> int | None:  # nanosecond times do not survive a trip through float
            v = values.get(k)
            return v if isinstance(v, int) and not isinstance(v, bool) else int(v) if isinstance(v, float) else None

        return cls(tags.get("site", ""), tags.get("plot", ""), tags.get("camera", ""), time_ns,
                   str(values.get("health", "ok")), whole("since_ns") or time_ns, num("latency_ms") or 0.0,
                   whole("bytes") or 0, num("brightness"), num("contrast"), num("sharpness"), num("motion"),
                   whole("objects") or 0, str(values.get("intrusion", "") or ""), whole("snapshot_ns"),
                   str(values.get("error", "") or ""))


# -- the grading line ------------------------------------------------------------------------------------------
GRADES = ("extra", "class1", "class2", "reject")
REJECT_REASONS = ("rot", "underweight", "defects")  # why a fruit is out of every class (video/grading/grade.py)
FRUIT_MEASUREMENT = "fruit"  # one point per graded fruit: tags site, line, lot, plot
FRUIT_FIELDS = ("grade", "count_size", "weight_g", "length_mm", "max_diameter_mm", "min_diameter_mm", "ratio",
                "colour_std", "defects", "reasons", "lane")
LINE_MEASUREMENT = "grading"  # one point per line, lot and minute, written also when the belt is empty


@dataclass(frozen=True, slots=True)
class LineMinute:
    """What a grading line did in one minute for one lot (lot "" when none was open): the per-minute aggregate
    in the store, and the heartbeat the line-stopped rule watches."""

    site: str
    line: str
    lot: str
    plot: str
    time_ns: int  # the minute's start
    fruit: int = 0
    grades: Mapping[str, int] = field(default_factory=dict)
    weight_g: float = 0.0
    rejects: Mapping[str, int] = field(default_factory=dict)  # reason -> rejected fruit
    frames: int = 0
    errors: int = 0  # frames that could not be graded (no picture, marker missing)

    FIELDS: ClassVar[tuple[str, ...]] = ("fruit", *GRADES, "weight_g", *(f"rej_{r}" for r in REJECT_REASONS),
                                         "frames", "errors")

    def point(self) -> Point:
        fields: dict[str, FieldValue] = {"fruit": self.fruit, "weight_g": round(self.weight_g, 1),
                                         "frames": self.frames, "errors": self.errors}
        fields |= {g: int(self.grades.get(g, 0)) for g in GRADES}
        fields |= {f"rej_{r}": int(self.rejects.get(r, 0)) for r in REJECT_REASONS}
        return Point(LINE_MEASUREMENT, {"site": self.site, "line": self.line, "lot": self.lot, "plot": self.plot},
                     fields, self.time_ns)

    @classmethod
    def from_values(cls, tags: Mapping[str, str], time_ns: int, values: Mapping[str, FieldValue]) -> LineMinute:
        def n(k: str) -> int:
            v = values.get(k)
            return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0

        w = values.get("weight_g")
        return cls(tags.get("site", ""), tags.get("line", ""), tags.get("lot", ""), tags.get("plot", ""), time_ns,
                   n("fruit"), {g: n(g) for g in GRADES}, float(w) if isinstance(w, int | float) else 0.0,
                   {r: n(f"rej_{r}") for r in REJECT_REASONS}, n("frames"), n("errors"))

    @property
    def rejected(self) -> int:
        return int(self.grades.get("reject", 0))
