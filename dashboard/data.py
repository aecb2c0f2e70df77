"""Every read the dashboard makes, in one place, cached for a few seconds (st.cache_data).

Only the store interface is used, so the same code runs on InfluxDB and on SQLite. Each function makes one
grouped query, never one per plot or device. Times come back as tz-aware pandas timestamps in the site's zone.

Every public function takes the Principal first and returns only what it may see (orchard/access.py): plot
filters go into the query where the store can take them, and the cached village-wide answers are cut to the
principal's plots before they leave this module. What only the command center may read raises Forbidden.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import shell
from orchard.access import Forbidden, Principal
from orchard.catalogue import CATALOGUE, TELEMETRY
from orchard.models import (
    CAMERA_MEASUREMENT,
    FRUIT_FIELDS,
    FRUIT_MEASUREMENT,
    GRADES,
    LINE_MEASUREMENT,
    Alarm,
    CameraStatus,
    FieldValue,
    LineMinute,
)
from orchard.records import tally
from orchard.records.alarms import AlarmBook
from orchard.records.lots import Lot, Lots, SeasonQuality
from orchard.records.notices import tier_villages
from orchard.records.people import People, Role
from orchard.records.tally import Figures
from orchard.store.base import Aggregate, Where

TTL_S = 15  # a wall screen refreshing every 30 s sees data at most ~45 s old; many viewers share one query
NS = 1_000_000_000
DAY_NS = 86400 * NS
KEY_READINGS = ("air_temp_c", "rh_pct", "leaf_wetness_pct", "soil_vwc_pct")


def now_ns() -> int:
    return time.time_ns()


def resolution_s(span_s: float) -> int | None:
    """Bucket size for a time range: raw up to a day, 10-minute means to 7 days, hourly to 90 days, then daily."""
    if span_s <= 86400:
        return None
    if span_s <= 7 * 86400:
        return 600
    if span_s <= 90 * 86400:
        return 3600
    return 86400


def _where(plots: Sequence[str] | None, devices: Sequence[str] | None) -> Where:
    w: dict[str, str | Sequence[str]] = {}
    if plots is not None:
        w["plot"] = list(plots)
    if devices is not None:
        w["device"] = list(devices)
    return w


def _times(ns: pd.Series) -> pd.Series:
    return pd.to_datetime(ns, unit="ns", utc=True).dt.tz_convert(shell.site().tz)


def _cut(df: pd.DataFrame, who: Principal, column: str = "plot") -> pd.DataFrame:
    """Only the rows of plots the principal may see."""
    if who.plots is None:
        return df
    return df[df[column].isin(who.plots)].reset_index(drop=True)


def latest(who: Principal, since_days: int = 7) -> pd.DataFrame:
    """Newest value of every reading of every series the principal may see: plot, device, depth_cm, field, value,
    time_ns, time."""
    return _cut(_latest(since_days), who)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _latest(since_days: int) -> pd.DataFrame:
    rows = shell.store().latest(TELEMETRY, list(CATALOGUE), since_ns=now_ns() - since_days * DAY_NS)
    df = pd.DataFrame(
        [(r.tags.get("plot", ""), r.tags.get("device", ""), r.tags.get("depth_cm") or "", r.field, r.value, r.time_ns)
         for r in rows],
        columns=["plot", "device", "depth_cm", "field", "value", "time_ns"],
    )
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["time"] = _times(df["time_ns"])
    return df


def plot_readings(latest_df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per plot, each reading's newest value (soil depths averaged)."""
    if latest_df.empty:
        return {}
    newest = latest_df.sort_values("time_ns").groupby(["plot", "device", "depth_cm", "field"]).tail(1)
    means = newest.groupby(["plot", "field"])["value"].mean()
    out: dict[str, dict[str, float]] = {}
    for (plot, field), v in means.items():
        out.setdefault(str(plot), {})[str(field)] = float(v)
    return out


@dataclass(frozen=True, slots=True)
class Last24h:
    """Per plot over the last 24 h: minimum air temperature and rain total."""

    min_temp: dict[str, float]
    rain: dict[str, float]


def last_24h(who: Principal) -> Last24h:
    every = _last_24h()
    return Last24h({p: x for p, x in every.min_temp.items() if who.sees(p)},
                   {p: x for p, x in every.rain.items() if who.sees(p)})


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _last_24h() -> Last24h:
    end = now_ns()
    rows = shell.store().aggregate(TELEMETRY, ["air_temp_c", "rain_mm"], ["min", "sum"], end - DAY_NS, end,
                                   group_by=["plot"])
    mins, rain = {}, {}
    for r in rows:
        plot = r.tags.get("plot", "")
        if (v := r.values.get("air_temp_c.min")) is not None:
            mins[plot] = float(v)
        if (v := r.values.get("rain_mm.sum")) is not None:
            rain[plot] = float(v)
    return Last24h(mins, rain)


def series(
    who: Principal,
    fields: tuple[str, ...],
    start_ns: int,
    end_ns: int,
    by: str = "device",
    plots: tuple[str, ...] | None = None,
    devices: tuple[str, ...] | None = None,
    every_s: int | None = None,
) -> pd.DataFrame:
    """Long table: time, plot, device, depth_cm, field, value[, min, max], of the plots asked for that the
    principal may see (all of theirs when none are named).

    every_s None: raw readings. Otherwise mean/min/max per bucket and per `by` ("device" keeps each device and
    soil depth apart, "plot" averages a plot's devices), so one query serves any number of plots.
    """
    return _series(fields, start_ns, end_ns, by, who.scope(plots), devices, every_s)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _series(
    fields: tuple[str, ...],
    start_ns: int,
    end_ns: int,
    by: str = "device",
    plots: tuple[str, ...] | None = None,
    devices: tuple[str, ...] | None = None,
    every_s: int | None = None,
) -> pd.DataFrame:
    store = shell.store()
    where = _where(plots, devices)
    cols = ["time_ns", "plot", "device", "depth_cm", "field", "value", "min", "max"]
    records: list[tuple[object, ...]] = []
    if every_s is None:
        for r in store.range(TELEMETRY, list(fields), start_ns, end_ns, where=where):
            tags = r.tags
            for f, v in r.values.items():
                if f in fields and v is not None:
                    records.append((r.time_ns, tags.get("plot", ""), tags.get("device", ""),
                                    tags.get("depth_cm") or "", f, v, None, None))
    else:
        group = ["plot", "device", "depth_cm"] if by == "device" else ["plot"]
        fns: list[Aggregate] = ["mean", "min", "max"]
        for r in store.aggregate(TELEMETRY, list(fields), fns, start_ns, end_ns, every_s * NS, group, where=where):
            tags = r.tags
            for f in fields:
                mean = r.values.get(f"{f}.mean")
                if mean is None:
                    continue
                records.append((r.time_ns, tags.get("plot", ""), tags.get("device", "") if by == "device" else "",
                                tags.get("depth_cm") or "", f, mean, r.values.get(f"{f}.min"),
                                r.values.get(f"{f}.max")))
    df = pd.DataFrame(records, columns=cols)
    for c in ("value", "min", "max"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["time"] = _times(df["time_ns"])
    return df.sort_values(["field", "plot", "device", "depth_cm", "time_ns"], ignore_index=True)


def hourly_by_plot(who: Principal, fields: tuple[str, ...], hours: int = 24) -> pd.DataFrame:
    """Hourly means per plot over the last `hours`, for the command center's strip."""
    end = now_ns()
    start = (end - hours * 3600 * NS) // (3600 * NS) * (3600 * NS)
    return series(who, fields, start, end, by="plot", every_s=3600)


def devices(who: Principal) -> pd.DataFrame:
    """The registry's devices on the principal's plots: device, plot, kind, status, online, last_seen_ns, profile,
    unmapped (fields its profile does not know, as last reported). Devices
    not yet approved (new, pending, rejected) only for the command center: their plot is only what they claim."""
    df = _cut(_devices(), who)
    return df if who.is_center else df[df["status"] == "approved"].reset_index(drop=True)


@st.cache_data(ttl=5, show_spinner=False)
def _devices() -> pd.DataFrame:
    rows = shell.records().devices()
    return pd.DataFrame(
        [(d.device, d.plot, d.kind, d.status, d.online, d.last_seen_ns, d.profile or "", ", ".join(d.unmapped),
          d.clock_skew_s) for d in rows],
        columns=["device", "plot", "kind", "status", "online", "last_seen_ns", "profile", "unmapped",
                 "clock_skew_s"],
    )


def stale_after_ns(devices: list[str] | None = None, plot: str | None = None) -> int:
    """How old data may be before it counts as stale (and its device as offline): `stale_after_intervals` of the
    slowest reading interval among the given devices, or a plot's devices (site file; 60 s when not listed)."""
    site, cfg = shell.site(), shell.settings().dashboard
    intervals = {d.id: d.interval_s for d in site.devices}
    if plot is not None:
        devices = [d.id for d in site.devices if d.plot == plot]
    slowest = max((intervals.get(d, 60) for d in devices or []), default=60)
    return cfg.stale_after_intervals * slowest * NS


def presence(devs: pd.DataFrame, latest_df: pd.DataFrame, now: int) -> pd.DataFrame:
    """The registry with a `state` per device: online, offline, pending or rejected.

    Last seen is the later of what ingest recorded and the newest reading in the store (a backfill or another
    ingest may have written data this registry did not see). Offline when the device's last will said so, or
    when it missed `stale_after_intervals` of its reading interval (from the site file, 60 s if not listed).
    """
    out = devs.copy()
    newest = latest_df.groupby("device")["time_ns"].max() if not latest_df.empty else pd.Series(dtype="int64")
    stored = out["device"].map(newest)
    out["last_seen_ns"] = pd.concat([out["last_seen_ns"], stored], axis=1).max(axis=1)
    limit = out["device"].map(lambda d: stale_after_ns([d]))
    missed = out["last_seen_ns"].isna() | (now - out["last_seen_ns"].fillna(0) > limit)
    out["state"] = "online"
    out.loc[missed | (out["online"] == False), "state"] = "offline"  # noqa: E712  (None means not told)
    out.loc[out["status"].isin(["pending", "rejected"]), "state"] = out["status"]
    return out


def last_payload(who: Principal, device: str) -> tuple[int, str, bytes] | None:
    """(received_ns, topic, payload) a device last sent, as ingest noted it: raw payloads are the command
    center's, like the dead letters."""
    who.require(center=True)
    return shell.records().last_payload(device)


def dead_letters(who: Principal, since_ns: int, until_ns: int, device: str | None = None, kind: str | None = None,
                 limit: int = 2000) -> pd.DataFrame:
    """Rejected messages, raw payloads and all: the command center's only."""
    who.require(center=True)
    return _dead_letters(since_ns, until_ns, device, kind, limit)


@st.cache_data(ttl=5, show_spinner=False)
def _dead_letters(since_ns: int, until_ns: int, device: str | None = None, kind: str | None = None,
                 limit: int = 2000) -> pd.DataFrame:
    letters = shell.records().dead_letters(device=device, since_ns=since_ns, until_ns=until_ns, kind=kind,
                                           limit=limit)
    df = pd.DataFrame(
        [(s.id, s.letter.received_ns, s.letter.device or "", s.letter.plot or "", s.letter.reason.split(":")[0],
          s.letter.reason, s.letter.topic, s.letter.payload, s.held, s.replayed_ns is not None) for s in letters],
        columns=["id", "received_ns", "device", "plot", "kind", "reason", "topic", "payload", "held", "replayed"],
    )
    df["time"] = _times(df["received_ns"])
    return df


def dead_letter_counts(who: Principal) -> pd.DataFrame:
    who.require(center=True)
    return _dead_letter_counts()


@st.cache_data(ttl=5, show_spinner=False)
def _dead_letter_counts() -> pd.DataFrame:
    counts = shell.records().dead_letter_counts()
    return pd.DataFrame([(d or "", k, n) for (d, k), n in counts.items()], columns=["device", "kind", "count"])


def active_alarms(who: Principal) -> list[Alarm]:
    """Active alarms on the principal's plots, worst first (the analytics service raises and clears them)."""
    return [a for a in _active_alarms() if who.sees(a.plot)]


@st.cache_data(ttl=5, show_spinner=False)
def _active_alarms() -> list[Alarm]:
    return AlarmBook(shell.records(), shell.site().id).active()


def clear() -> None:
    """After a change the user made (approve, reject), show it at once."""
    st.cache_data.clear()


def camera_statuses(who: Principal) -> dict[str, CameraStatus]:
    """Each camera's latest report from the cameras service, for the cameras on the principal's plots."""
    return {cam: s for cam, s in _camera_statuses().items() if who.sees(s.plot)}


@st.cache_data(ttl=5, show_spinner=False)
def _camera_statuses() -> dict[str, CameraStatus]:
    rows = shell.store().latest(CAMERA_MEASUREMENT, CameraStatus.FIELDS, since_ns=now_ns() - 7 * DAY_NS)
    newest: dict[str, int] = {}
    for r in rows:
        cam = r.tags.get("camera", "")
        newest[cam] = max(newest.get(cam, 0), r.time_ns)
    tags: dict[str, Mapping[str, str]] = {}
    values: dict[str, dict[str, FieldValue]] = {}
    for r in rows:  # only the newest report's fields: an unreachable camera's report has no brightness
        cam = r.tags.get("camera", "")
        if r.time_ns == newest[cam]:
            tags[cam] = r.tags
            values.setdefault(cam, {})[r.field] = r.value
    return {cam: CameraStatus.from_values(tags[cam], t, values[cam]) for cam, t in newest.items()}


def camera_history(who: Principal, camera: str, start_ns: int, end_ns: int) -> pd.DataFrame:
    """One camera's reports over a span: time, health, motion, brightness, intrusion. Forbidden for a camera
    that is not on the principal's plots (or not in the site file at all)."""
    plot = next((c.plot for c in shell.site().cameras if c.id == camera), None)
    if plot is None:
        raise Forbidden()
    who.check(plot)
    return _camera_history(camera, start_ns, end_ns)


@st.cache_data(ttl=30, show_spinner=False)
def _camera_history(camera: str, start_ns: int, end_ns: int) -> pd.DataFrame:
    rows = shell.store().range(CAMERA_MEASUREMENT, ("health", "motion", "brightness", "intrusion"), start_ns,
                               end_ns, where={"camera": camera})
    df = pd.DataFrame([(r.time_ns, r.values.get("health", ""), r.values.get("motion"), r.values.get("brightness"),
                        r.values.get("intrusion", "")) for r in rows],
                      columns=["time_ns", "health", "motion", "brightness", "intrusion"])
    df["time"] = _times(df["time_ns"])
    return df


# -- the grading line -------------------------------------------------------------------------------------------
def lots() -> Lots:
    return Lots(shell.records(), shell.site())


def open_lot(who: Principal, line: str) -> Lot | None:
    """The lot on the line now, if it is of a plot the principal may see."""
    lot = _open_lot(line)
    return lot if lot is not None and who.sees(lot.plot) else None


@st.cache_data(ttl=5, show_spinner=False)
def _open_lot(line: str) -> Lot | None:
    return lots().current(line)


def lot(who: Principal, lot_id: int) -> Lot:
    """One lot; KeyError when there is none, Forbidden when it is another grower's."""
    found = lots().get(lot_id)
    who.check(found.plot)
    return found


@st.cache_data(ttl=5, show_spinner=False)
def _lot_history(plots: tuple[str, ...] | None, limit: int) -> list[Lot]:
    return lots().history(list(plots) if plots is not None else None, limit=limit)


def lot_history(who: Principal, plots: tuple[str, ...] | None = None, limit: int = 200) -> list[Lot]:
    return _lot_history(who.scope(plots), limit)


@st.cache_data(ttl=60, show_spinner=False)
def _season_quality(plots: tuple[str, ...] | None) -> list[SeasonQuality]:
    return lots().seasons(list(plots) if plots is not None else None)


def season_quality(who: Principal, plots: tuple[str, ...] | None = None) -> list[SeasonQuality]:
    return _season_quality(who.scope(plots))


def line_minutes(who: Principal, line: str, start_ns: int, end_ns: int) -> pd.DataFrame:
    """A line's per-minute reports over a span, all lots of a minute added up: time, fruit, the grades,
    weight_g, rej_<reason>, frames, errors, and the lot open (the last one reported in the minute). For a
    principal with only some plots, only the minutes of those plots' lots."""
    return _line_minutes(line, start_ns, end_ns, who.scope())


@st.cache_data(ttl=5, show_spinner=False)
def _line_minutes(line: str, start_ns: int, end_ns: int, plots: tuple[str, ...] | None) -> pd.DataFrame:
    where: dict[str, str | Sequence[str]] = {"line": line}
    if plots is not None:
        where["plot"] = list(plots)
    rows = shell.store().range(LINE_MEASUREMENT, LineMinute.FIELDS, start_ns, end_ns, where=where)
    cols = ["fruit", *GRADES, "weight_g", *(f for f in LineMinute.FIELDS if f.startswith("rej_")), "frames",
            "errors"]
    df = pd.DataFrame([{"time_ns": r.time_ns, "lot": r.tags.get("lot", ""),
                        **{c: r.values.get(c, 0) for c in cols}} for r in rows],
                      columns=["time_ns", "lot", *cols])
    if not df.empty:
        lots_by_minute = df.sort_values("lot").groupby("time_ns")["lot"].last()
        df = df.groupby("time_ns", as_index=False)[cols].sum()
        df["lot"] = df["time_ns"].map(lots_by_minute)
        df = df.sort_values("time_ns")
    df["time"] = _times(df["time_ns"])
    return df


def lot_fruit(who: Principal, lot_id: int, start_ns: int, end_ns: int) -> pd.DataFrame:
    """Every fruit of a lot: time and the FRUIT_FIELDS, oldest first (Forbidden for another grower's lot)."""
    lot(who, lot_id)
    return _lot_fruit(lot_id, start_ns, end_ns)


@st.cache_data(ttl=15, show_spinner=False)
def _lot_fruit(lot_id: int, start_ns: int, end_ns: int) -> pd.DataFrame:
    rows = shell.store().range(FRUIT_MEASUREMENT, FRUIT_FIELDS, start_ns, end_ns, where={"lot": str(lot_id)})
    df = pd.DataFrame([{"time_ns": r.time_ns, **{f: r.values.get(f) for f in FRUIT_FIELDS}} for r in rows],
                      columns=["time_ns", *FRUIT_FIELDS])
    df["time"] = _times(df["time_ns"])
    return df


def county_figures(who: Principal, days: float = 30) -> tuple[list[Figures], list[Figures]]:
    """The county view's figures for a county or town staff member: per village of their tier, and per town."""
    if who.role not in (Role.COUNTY, Role.TOWN):
        raise Forbidden()
    user = People(shell.records()).get(who.name)
    if user is None:
        raise Forbidden()
    villages = tier_villages(user, shell.county())
    return _county_figures(tuple(villages), days)


@st.cache_data(ttl=30, show_spinner=False)
def _county_figures(villages: tuple[str, ...], days: float) -> tuple[list[Figures], list[Figures]]:
    return tally.county_figures(shell.records(), shell.county(), villages, now_ns(), days)
