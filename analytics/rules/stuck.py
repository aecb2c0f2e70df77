"""Stuck reading: the same value of a reading that always moves, for two hours."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000


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
        window = [(f, a) for f in cfg.fields if len((a := data.raw.arrays(f)).times)]
        if not any((a.times >= since).any() for _, a in window):
            return [self.hold(src)]  # nothing recent to judge by
        stuck = []
        for field, depth, g in ((f, d, g) for f, a in window for d, g in a.by_depth()):
            recent = g.times >= since
            times, values = g.times[recent], g.values[recent]
            span = (times[-1] - times[0]) / NS / 60 if len(times) else 0
            if len(values) >= 10 and span >= cfg.minutes * 0.9 and (values == values[0]).all():
                stuck.append(f"{field}{'@' + depth + 'cm' if depth else ''}={values[0]:g}")
        if stuck:
            return [self.signal(site, src, "warning", plot=data.device.plot, device=data.device.id,
                                readings=", ".join(sorted(stuck)), minutes=round(cfg.minutes))]
        return [self.clear(src)]
