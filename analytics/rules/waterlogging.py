"""Waterlogging: kiwifruit roots suffer in saturated soil; days of it kill them."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from orchard.site import Site

NS = 1_000_000_000
GROWING = frozenset({"budbreak", "flowering", "fruit_set", "fruit_growth", "maturation", "post_harvest"})


class WaterloggingConfig(RuleConfig):
    above_fc_pct: float = Field(5.0, description="Soil water this far above field capacity (VWC points) is saturated.")
    warning_h: int = Field(24, description="Hours saturated for a warning.")
    major_h: int = Field(72, description="Hours saturated for a major alarm (roots start to die).")


@register
class Waterlogging(PlotRule):
    type = "waterlogging"
    Config = WaterloggingConfig

    def evaluate(self, site: Site, data: PlotData, cfg: WaterloggingConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        h = data.hourly.of("soil_vwc_pct")
        if h.empty or now_ns - int(h["time_ns"].iloc[-1]) > 3 * 3600 * NS:
            return [self.hold(src)]
        limit = data.plot.field_capacity_pct + cfg.above_fc_pct
        wet = h["mean"] >= limit
        dry_times = h.loc[~wet, "time_ns"]
        since = int(dry_times.iloc[-1]) if not dry_times.empty else int(h["time_ns"].iloc[0]) - 3600 * NS
        hours = int((h["time_ns"] > since).sum())
        common = {"plot": data.plot.id, "hours": hours, "vwc_pct": float(h["mean"].iloc[-1]), "limit_pct": limit}
        if hours >= cfg.major_h:
            return [self.signal(site, src, "major", **common)]
        if hours >= cfg.warning_h:
            return [self.signal(site, src, "warning", **common)]
        return [self.clear(src) if float(h["mean"].iloc[-1]) < limit - 3 else self.hold(src)]
