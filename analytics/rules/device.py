"""Device and data health: offline, low battery, stuck values, spikes, disagreement with neighbouring plots."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000


def by_depth(rows: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """A reading's rows per soil depth ("" for readings without one); one group without grouping when so."""
    depths = rows["depth_cm"]
    if len(rows) and (depths == depths.iat[0]).all():
        yield str(depths.iat[0]), rows
        return
    for depth, g in rows.groupby("depth_cm"):
        yield str(depth), g


class OfflineConfig(RuleConfig):
    missed_intervals: int = Field(3, ge=1, description="Offline after this many missed reading intervals.")


@register
class Offline(DeviceRule):
    type = "device_offline"
    Config = OfflineConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: OfflineConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        d = data.device
        src = device_source(d.id)
        limit = cfg.missed_intervals * d.interval_s * NS
        silent = data.last_seen_ns is None or now_ns - data.last_seen_ns > limit
        if silent or data.online is False:
            if data.last_seen_ns is None:
                return [self.signal(site, src, "warning", text="never", plot=d.plot, device=d.id, kind=d.kind)]
            return [self.signal(site, src, "warning", plot=d.plot, device=d.id, kind=d.kind,
                                minutes=round((now_ns - data.last_seen_ns) / NS / 60), last_will=data.online is False)]
        return [self.clear(src)]


class BatteryConfig(RuleConfig):
    warning_v: float = Field(3.3, description="Battery voltage for a warning (a Li-ion cell near empty).")
    major_v: float = Field(3.1, description="Battery voltage for a major alarm (the device will stop soon).")
    clear_v: float = Field(3.45, description="Clear at or above this (charged or replaced).")


@register
class LowBattery(DeviceRule):
    type = "low_battery"
    Config = BatteryConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: BatteryConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        b = data.raw.of("battery_v")
        if b.empty:
            return [self.hold(src)]
        volts = float(b["value"].tail(5).median())  # one low reading in the cold of dawn is not a dead battery
        return [self.graded(site, src, volts, warning=cfg.warning_v, major=cfg.major_v, clear=cfg.clear_v,
                            rising=False, threshold_key="threshold_v", plot=data.device.plot, device=data.device.id,
                            volts=volts)]


class StuckConfig(RuleConfig):
    minutes: float = Field(120, description="The same value for this long means a stuck sensor.")
    fields: tuple[str, ...] = Field(("air_temp_c", "rh_pct"), description="Readings checked (they always move "
                                    "within two hours; soil moisture may rightly stay put for a day).")


@register
class Stuck(DeviceRule):
    type = "stuck_value"
    Config = StuckConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: StuckConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        since = now_ns - int(cfg.minutes * 60 * NS)
        window = [(f, rows[rows["time_ns"] >= since]) for f in cfg.fields if not (rows := data.raw.of(f)).empty]
        if not any(not rows.empty for _, rows in window):
            return [self.hold(src)]
        stuck = []
        for field, depth, g in ((f, d, g) for f, rows in window for d, g in by_depth(rows)):
            span = (g["time_ns"].max() - g["time_ns"].min()) / NS / 60
            if len(g) >= 10 and span >= cfg.minutes * 0.9 and g["value"].nunique() == 1:
                stuck.append(f"{field}{'@' + str(depth) + 'cm' if depth else ''}={g['value'].iloc[0]}")
        if stuck:
            return [self.signal(site, src, "warning", plot=data.device.plot, device=data.device.id,
                                readings=", ".join(sorted(stuck)), minutes=round(cfg.minutes))]
        return [self.clear(src)]


class SpikeConfig(RuleConfig):
    jump: dict[str, float] = Field(
        default_factory=lambda: {"air_temp_c": 8.0, "rh_pct": 30.0, "soil_vwc_pct": 15.0, "canopy_temp_c": 10.0},
        description="A reading further than this from the median of its neighbours in time is a spike.")
    clear_h: float = Field(3.0, description="Clear after this many hours without a spike.")


@register
class Spike(DeviceRule):
    type = "spike"
    Config = SpikeConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: SpikeConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        tables = [(f, rows) for f in cfg.jump if not (rows := data.raw.of(f)).empty]
        if not tables:
            return [self.hold(src)]
        last_spike, worst = None, ""
        for field, g in ((f, g) for f, rows in tables for _, g in by_depth(rows)):
            values = g["value"].to_numpy(dtype=float)
            if len(values) < 5:
                continue
            padded = np.concatenate([values[:1], values[:1], values, values[-1:], values[-1:]])
            med = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)  # centred, 5 readings
            spikes = np.flatnonzero(np.abs(values - med) > cfg.jump[str(field)])
            if spikes.size:
                t = int(g["time_ns"].iloc[spikes[-1]])
                if last_spike is None or t > last_spike:
                    last_spike, worst = t, f"{field}={values[spikes[-1]]:g}"
        if last_spike is not None and now_ns - last_spike <= 3600 * NS:
            return [self.signal(site, src, "warning", plot=data.device.plot, device=data.device.id, reading=worst)]
        if last_spike is None or now_ns - last_spike > cfg.clear_h * 3600 * NS:
            return [self.clear(src)]
        return [self.hold(src)]


class NeighboursConfig(RuleConfig):
    max_diff_c: float = Field(4.0, description="Air temperature this far from the other plots' median (last hour) "
                              "means the sensor is wrong, misplaced or in the sun.")
    min_neighbours: int = Field(3, description="Compare only with at least this many other plots reporting.")
    day_hours: tuple[int, int] = Field((10, 17), description="Local hours to compare in: by day the air is mixed; "
                                       "on clear nights a frost hollow is rightly several degrees colder.")


@register
class Neighbours(DeviceRule):
    type = "neighbour_disagreement"
    Config = NeighboursConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: NeighboursConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        hour = datetime.fromtimestamp(now_ns / NS, site.tz).hour
        if not cfg.day_hours[0] <= hour < cfg.day_hours[1]:
            return [self.hold(src)]
        mine = data.raw.of("air_temp_c")
        mine = mine[mine["time_ns"] >= now_ns - 3600 * NS]
        plot_air: Mapping[str, float] = context.get("plot_air", {})
        others = [v for p, v in plot_air.items() if p != data.device.plot]
        if mine.empty or len(others) < cfg.min_neighbours:
            return [self.hold(src)]
        own, median = float(mine["value"].mean()), float(np.median(others))
        if abs(own - median) > cfg.max_diff_c:
            return [self.signal(site, src, "warning", plot=data.device.plot, device=data.device.id, temp_c=own,
                                neighbours_c=median, diff_c=own - median)]
        return [self.clear(src) if abs(own - median) < cfg.max_diff_c - 1 else self.hold(src)]
