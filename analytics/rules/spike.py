"""Spike: a reading far from the median of its neighbours in time (an implausible jump)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000


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
        tables = [(f, a) for f in cfg.jump if len((a := data.raw.arrays(f)).times)]
        if not tables:
            return [self.hold(src)]
        last_spike, worst = None, ""
        for field, g in ((f, g) for f, a in tables for _, g in a.by_depth()):
            values = g.values
            if len(values) < 5:
                continue
            padded = np.concatenate([values[:1], values[:1], values, values[-1:], values[-1:]])
            med = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)  # centred, 5 readings
            spikes = np.flatnonzero(np.abs(values - med) > cfg.jump[field])
            if spikes.size:
                t = int(g.times[spikes[-1]])
                if last_spike is None or t > last_spike:
                    last_spike, worst = t, f"{field}={values[spikes[-1]]:g}"
        if last_spike is not None and now_ns - last_spike <= 3600 * NS:
            return [self.signal(site, src, "warning", plot=data.device.plot, device=data.device.id, reading=worst)]
        if last_spike is None or now_ns - last_spike > cfg.clear_h * 3600 * NS:
            return [self.clear(src)]
        return [self.hold(src)]
