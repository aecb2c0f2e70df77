"""The site configuration: the village's plots (names, variety, area, owner, outline) and devices.

A site is a directory with `site.toml` (the site and its devices) and a GeoJSON file of plot outlines whose
feature properties hold each plot's facts, so plots can be drawn and edited in any GIS tool. The simulator, the
dashboard and the later services read it; `ORCHARD_SITE_FILE` points at it, and without it the site named by
`ORCHARD_SITE` is taken from the ones shipped in `orchard/sites/`.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Collection
from datetime import time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from orchard.settings import Section, Settings

SHIPPED = Path(__file__).parent / "sites"

# Kiwifruit varieties the rule pack knows (growth-stage calendars differ): id -> (zh, en).
VARIETIES: dict[str, tuple[str, str]] = {
    "hongyang": ("红阳", "Hongyang"),
    "hayward": ("海沃德", "Hayward"),
    "jinyan": ("金艳", "Jinyan"),
    "cuixiang": ("翠香", "Cuixiang"),
}
class DeviceKind(StrEnum):
    """What a field device of the site file is."""

    WEATHER_STATION = "weather_station"
    SOIL_PROBE = "soil_probe"
    GATEWAY = "gateway"


class SiteError(Exception):
    """The site configuration cannot be used; the message says which file and what to fix."""


class Plot(Section):

    id: str = Field(pattern=r"^[\w.:-]{1,64}$", description="Plot id: the third MQTT topic level and the `plot` tag.")
    name: str = Field(description="Name shown to people (Chinese).")
    name_en: str = Field("", description="English name; the id when empty.")
    variety: str = Field(description=f"Kiwifruit variety: one of {', '.join(VARIETIES)}.")
    area_mu: float = Field(gt=0, description="Area in mu (亩, 666.7 m2).")
    owner: str = Field(description="The farmer who owns or runs the plot.")
    elevation_m: float = Field(0, description="Elevation; low plots in a valley collect cold air on frost nights.")
    field_capacity_pct: float = Field(38, gt=0, le=100, description="Soil water content (VWC %) at field capacity.")
    wilting_point_pct: float = Field(15, ge=0, lt=100, description="Soil water content (VWC %) at wilting point.")
    polygon: tuple[tuple[float, float], ...] = Field(description="Outline as (longitude, latitude) points.")

    @field_validator("variety")
    @classmethod
    def _known_variety(cls, v: str) -> str:
        if v not in VARIETIES:
            raise ValueError(f"unknown variety {v!r}; known: {', '.join(VARIETIES)}")
        return v

    @model_validator(mode="after")
    def _soil_water(self) -> Plot:
        if self.wilting_point_pct >= self.field_capacity_pct:
            raise ValueError("wilting_point_pct must be below field_capacity_pct")
        if len(self.polygon) < 3:
            raise ValueError("the outline needs at least 3 points")
        return self

    def label(self, lang: str) -> str:
        return self.name if lang == "zh" else (self.name_en or self.id)


class DeviceConfig(Section):

    id: str = Field(pattern=r"^[\w.:-]{1,64}$", description="Device id: the fourth MQTT topic level.")
    plot: str = Field(description="Id of the plot the device stands in.")
    kind: DeviceKind = Field(description="weather_station, soil_probe or gateway.")
    interval_s: int = Field(60, gt=0, description="Seconds between readings; offline after 3 missed intervals.")
    dev_eui: str | None = Field(None, description="LoRaWAN devEUI for ChirpStack uplinks.")
    profile: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="The sensor model's "
                                "profile (sensors/profiles/, `orchard devices profiles`); checked when a command "
                                "loads the site.")
    gateway: str | None = Field(None, description="Id of the gateway it reaches the server through, if any: "
                                "while that gateway is offline, this device's own offline alarm is muted.")


class CameraKind(StrEnum):
    """How the cameras service reaches a camera: the one list of kinds (video/sources/ has an opener for each)."""

    SNAPSHOT = "snapshot"  # an HTTP JPEG URL, as ONVIF cameras offer
    RTSP = "rtsp"  # an IP camera's RTSP stream, recorded by ffmpeg (live view, clips, snapshots from it)
    STREAM = "stream"  # RTSP or HTTP MJPEG read frame by frame by OpenCV (snapshots only)
    FILE = "file"  # a local video, played in a loop
    SYNTHETIC = "synthetic"  # the demo's camera


Polygon = tuple[tuple[float, float], ...]  # points as (x, y) fractions of the frame's width and height


class CameraZone(Section):

    name: str = Field(description="Name shown with an intrusion (Chinese): 东侧围栏, 大门.")
    polygon: Polygon = Field(description="Outline as (x, y) fractions of the frame, 0..1.")
    intrusion: bool = Field(True, description="Motion here at night is an intrusion event.")

    @field_validator("polygon")
    @classmethod
    def _inside(cls, v: Polygon) -> Polygon:
        if len(v) < 3 or any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in v):
            raise ValueError("a zone needs at least 3 points, each (x, y) between 0 and 1")
        return v


class CameraConfig(Section):
    """One camera. Its password is a secret: the environment variable named by password_env holds it."""


    id: str = Field(pattern=r"^[\w.:-]{1,64}$", description="Camera id: the `camera` tag and its snapshot folder.")
    plot: str = Field(description="Id of the plot the camera watches.")
    name: str = Field("", description="Name shown to people (Chinese); the id when empty.")
    kind: CameraKind = Field(description="rtsp (an IP camera's RTSP stream: live view, clips around events and "
                             "snapshots, one connection; `orchard admin camera probe` finds the URL), snapshot (HTTP "
                             "JPEG URL, as ONVIF cameras offer), stream (RTSP or HTTP MJPEG read by OpenCV, snapshots "
                             "only), file (a local video, played in a loop) or synthetic (the demo's camera).")
    url: str = Field(description="http(s):// snapshot URL, rtsp:// or http(s):// stream, file path, or "
                     "synthetic://<seed>.")
    interval_s: float = Field(5, gt=0, description="Seconds between snapshots.")
    username: str | None = Field(None, description="User name for the camera's HTTP authentication.")
    password_env: str | None = Field(None, description="Name of the environment variable holding its password.")
    auth: Literal["basic", "digest"] = Field("digest", description="HTTP authentication scheme of snapshot URLs.")
    zones: tuple[CameraZone, ...] = Field((), description="Watched zones; motion in one at night is an intrusion.")
    masks: tuple[Polygon, ...] = Field((), description="Areas motion detection ignores (swaying canopy, a road).")
    min_area_pct: float = Field(0.4, gt=0, le=100, description="Smallest moving object, in % of the frame.")
    width: int = Field(1280, ge=64, description="Frame width of a synthetic camera.")
    height: int = Field(720, ge=48, description="Frame height of a synthetic camera.")

    def label(self) -> str:
        return self.name or self.id

    def silent_after_s(self, missed_intervals: int = 3, floor_s: float = 120) -> float:
        """How long without a report before the camera counts as down (the camera_offline rule's defaults)."""
        return max(missed_intervals * self.interval_s, floor_s)


class LineKind(StrEnum):
    """Where a grading line's camera pictures come from."""

    SIMULATOR = "simulator"  # the demo's conveyor
    RTSP = "rtsp"  # an IP camera's RTSP stream, recorded by ffmpeg (live view, clips, snapshots from it)
    STREAM = "stream"  # RTSP or HTTP MJPEG read frame by frame by OpenCV (snapshots only)
    FILE = "file"  # a recorded video
    SNAPSHOT = "snapshot"  # an HTTP JPEG URL


class LineConfig(Section):
    """A fruit grading line and the overhead camera that watches its belt."""


    id: str = Field(pattern=r"^[\w.:-]{1,64}$", description="Line id: the `line` tag and alarm source line:<id>.")
    name: str = Field("", description="Name shown to people (Chinese); the id when empty.")
    kind: LineKind = Field(LineKind.SIMULATOR, description="simulator (the demo's conveyor), stream (RTSP or HTTP "
                           "MJPEG, every frame read in order), file (a recorded run, read once) or snapshot (HTTP "
                           "JPEG).")
    url: str = Field("", description="Stream URL, video file path or snapshot URL; simulator://<seed> or empty.")
    fps: float = Field(10, gt=0, le=120, description="Frames graded per second (snapshot and simulator lines; a "
                       "stream or file is read frame by frame at its own rate).")
    username: str | None = Field(None, description="User name for the camera.")
    password_env: str | None = Field(None, description="Name of the environment variable holding its password.")
    shifts: tuple[str, ...] = Field(("08:00-12:00", "13:30-18:00"), description="Working hours, local time, "
                                    "\"HH:MM-HH:MM\": a lot left open with the belt still in them is an alarm.")

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            try:
                a, b = s.split("-")
                if time.fromisoformat(a) >= time.fromisoformat(b):
                    raise ValueError
            except ValueError:
                raise ValueError(f"shift {s!r} is not HH:MM-HH:MM with the start before the end") from None
        return v

    def label(self) -> str:
        return self.name or self.id

    def in_shift(self, local: time) -> bool:
        return any(time.fromisoformat(s.split("-")[0]) <= local < time.fromisoformat(s.split("-")[1])
                   for s in self.shifts)


class SiteInfo(Section):

    id: str = Field(pattern=r"^[\w.:-]{1,64}$", description="Site id: the second MQTT topic level.")
    name: str = Field(description="Name shown to people (Chinese).")
    name_en: str = Field("", description="English name.")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone for display and daily buckets.")
    plots_file: str = Field("plots.geojson", description="GeoJSON of plot outlines, relative to site.toml.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from None
        return v


class Site(Section):

    site: SiteInfo
    plots: tuple[Plot, ...]
    devices: tuple[DeviceConfig, ...] = ()
    cameras: tuple[CameraConfig, ...] = ()
    lines: tuple[LineConfig, ...] = Field((), description="Fruit grading lines ([[lines]]).")
    rules: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Rule pack settings by rule type ([rules.spring_frost] temp_c = -2.0), "
        "with per-plot overrides under `plots` ([rules.spring_frost.plots.p05] temp_c = -1.0); checked by analytics.")

    escalation: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Escalation per severity ([escalation.critical] next_after_min = [5, 15], "
        "repeat_min = 10); checked by analytics.")

    @model_validator(mode="after")
    def _consistent(self) -> Site:
        ids = [p.id for p in self.plots]
        if len(set(ids)) != len(ids):
            raise ValueError("plot ids must be unique")
        dev_ids = [d.id for d in self.devices]
        if len(set(dev_ids)) != len(dev_ids):
            raise ValueError("device ids must be unique")
        unknown = sorted({d.plot for d in self.devices} - set(ids))
        if unknown:
            raise ValueError(f"devices name plots that are not in the plots file: {', '.join(unknown)}")
        gateways = {d.id for d in self.devices if d.kind == "gateway"}
        if bad := sorted({d.gateway for d in self.devices if d.gateway and d.gateway not in gateways}):
            raise ValueError(f"devices name gateways that are not listed as gateway devices: {', '.join(bad)}")
        cam_ids = [c.id for c in self.cameras]
        if len(set(cam_ids)) != len(cam_ids) or set(cam_ids) & set(dev_ids):
            raise ValueError("camera ids must be unique, and differ from device ids")
        if bad := sorted({c.plot for c in self.cameras} - set(ids)):
            raise ValueError(f"cameras name plots that are not in the plots file: {', '.join(bad)}")
        if len({x.id for x in self.lines}) != len(self.lines):
            raise ValueError("grading line ids must be unique")
        return self

    @property
    def id(self) -> str:
        return self.site.id

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)

    @cached_property
    def plot_by_id(self) -> dict[str, Plot]:
        return {p.id: p for p in self.plots}

    def name(self, lang: str) -> str:
        return self.site.name if lang == "zh" else (self.site.name_en or self.site.id)

    def plot_label(self, plot_id: str, lang: str) -> str:
        p = self.plot_by_id.get(plot_id)
        return p.label(lang) if p else plot_id

    @cached_property
    def centre(self) -> tuple[float, float]:
        """(latitude, longitude) of the plots' middle, for sunrise times."""
        lons = [x for p in self.plots for x, _ in p.polygon]
        lats = [y for p in self.plots for _, y in p.polygon]
        return sum(lats) / len(lats), sum(lons) / len(lons)

    def restricted(self, plots: Collection[str], lines: bool = True) -> Site:
        """This site cut to some plots, their devices and cameras (and the grading lines or none), for a person
        who may see only those. The village's centre stays (sunrise times), also for a person with no plot."""
        _ = self.centre, self.tz
        cut = self.model_copy(update={
            "plots": tuple(p for p in self.plots if p.id in plots),
            "devices": tuple(d for d in self.devices if d.plot in plots),
            "cameras": tuple(c for c in self.cameras if c.plot in plots),
            "lines": self.lines if lines else (),
        })
        cut.__dict__.pop("plot_by_id", None)  # the copy would keep the whole village's in its cache
        return cut

    def cameras_of(self, plot_id: str) -> list[CameraConfig]:
        return [c for c in self.cameras if c.plot == plot_id]

    def line(self, line_id: str) -> LineConfig:
        for x in self.lines:
            if x.id == line_id:
                return x
        raise KeyError(f"没有这条分选线 / no grading line {line_id!r}; the site has: "
                       f"{', '.join(x.id for x in self.lines) or '-'}")

    def device_plot(self) -> dict[str, str]:
        return {d.id: d.plot for d in self.devices}


def plots_from_geojson(data: object) -> list[dict[str, object]]:
    """Plot dicts (properties + polygon) from a GeoJSON FeatureCollection of Polygon features."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError("expected a GeoJSON FeatureCollection")
    plots = []
    for i, f in enumerate(data.get("features") or []):
        geom = f.get("geometry") or {}
        if geom.get("type") == "Polygon":
            ring = geom["coordinates"][0]
        elif geom.get("type") == "MultiPolygon":  # take the largest part; plots are one piece of land
            ring = max((poly[0] for poly in geom["coordinates"]), key=len)
        else:
            raise ValueError(f"feature {i}: geometry must be a Polygon, not {geom.get('type')!r}")
        props = dict(f.get("properties") or {})
        props["polygon"] = [(float(x), float(y)) for x, y, *_ in ring]
        plots.append(props)
    return plots


def load_site(path: Path) -> Site:
    """Read and check a site.toml and its plots file; SiteError names the file and the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        info = raw.get("site", {})
        plots_path = path.parent / info.get("plots_file", "plots.geojson")
        plots = plots_from_geojson(json.loads(plots_path.read_text(encoding="utf-8")))
        return Site(site=info, plots=plots, devices=raw.get("devices", []),
                    cameras=raw.get("cameras", []), lines=raw.get("lines", []), rules=raw.get("rules", {}),
                    escalation=raw.get("escalation", {}))
    except FileNotFoundError as e:
        raise SiteError(f"站点配置文件不存在 / site file missing: {e.filename}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as e:
        if isinstance(e, ValidationError):
            detail = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        else:
            detail = str(e)
        raise SiteError(f"站点配置有误 / invalid site configuration in {path}: {detail}") from None


def site_file(settings: Settings) -> Path:
    """The site.toml in use: ORCHARD_SITE_FILE, or the one shipped for ORCHARD_SITE."""
    return settings.site_file or SHIPPED / settings.site / "site.toml"


def site_for(settings: Settings) -> Site:
    path = site_file(settings)
    site = load_site(path)
    if site.id != settings.site:
        raise SiteError(f"站点不一致 / {path} describes site {site.id!r} but ORCHARD_SITE is {settings.site!r}")
    return site


def local_xy(site: Site) -> dict[str, list[tuple[float, float]]]:
    """Plot outlines in metres east/north of the site's south-west corner (equirectangular; fine for a village)."""
    lons = [x for p in site.plots for x, _ in p.polygon]
    lats = [y for p in site.plots for _, y in p.polygon]
    lon0, lat0 = min(lons), min(lats)
    kx = 111_320 * math.cos(math.radians(sum(lats) / len(lats)))
    ky = 110_574
    return {p.id: [((x - lon0) * kx, (y - lat0) * ky) for x, y in p.polygon] for p in site.plots}
