"""Heat: above 35 C with about 5 hours of strong sun scorches leaf edges; more than 2 days of it drops leaves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from orchard.site import Site

NS = 1_000_000_000
DAY_NS = 86400 * NS


class HeatConfig(RuleConfig):
    temp_c: float = Field(35.0, description="An hour is hot when its highest air temperature reaches this.")
    hours: int = Field(5, description="Hot hours within 24 h that scorch leaves (major).")
    escalate_days: int = Field(2, description="Days in a row with that many hot hours: leaf drop (critical).")
    clear_below_c: float = Field(33.0, description="Clear after 24 h without a hot hour and air below this.")


@register
class Heat(PlotRule):
    type = "heat"
    Config = HeatConfig
    stages = frozenset({"budbreak", "flowering", "fruit_set", "fruit_growth", "maturation", "post_harvest"})

    def evaluate(self, site: Site, data: PlotData, cfg: HeatConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        h = data.hourly.of("air_temp_c")
        if h.empty:
            return [self.hold(src)]
        times = h["time_ns"].to_numpy()[h["max"].to_numpy(dtype=float) >= cfg.temp_c]
        last24 = int((times >= now_ns - 24 * 3600 * NS).sum())
        # Local days by the zone's offset now (the 4 days looked at rarely straddle a clock change).
        offset = datetime.fromtimestamp(now_ns / NS, site.tz).utcoffset()
        shift = int(offset.total_seconds()) * NS if offset else 0
        per_day = Counter(((times + shift) // DAY_NS).tolist())
        today = (now_ns + shift) // DAY_NS
        streak = 0
        for back in range(0, 4):
            if per_day.get(today - back, 0) >= cfg.hours:
                streak += 1
            elif back > 0:  # today may still be on its way
                break
        t_max = float(h["max"].iloc[-1])
        common = {"plot": data.plot.id, "hot_hours": last24, "threshold_c": cfg.temp_c, "days": streak,
                  "temp_c": t_max}
        if streak >= cfg.escalate_days:
            return [self.signal(site, src, "critical", **common)]
        if last24 >= cfg.hours:
            return [self.signal(site, src, "major", **common)]
        if t_max >= cfg.temp_c:
            return [self.signal(site, src, "warning", **common)]
        return [self.clear(src) if last24 == 0 and t_max < cfg.clear_below_c else self.hold(src)]

