"""Disagreement with neighbouring plots: by day, a station's air temperature far from the other plots'."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000


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
