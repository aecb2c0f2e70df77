"""Drought: keep above 70% of the available water (between the plot's wilting point and field capacity)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from orchard.site import Site

NS = 1_000_000_000
GROWING = frozenset({"budbreak", "flowering", "fruit_set", "fruit_growth", "maturation", "post_harvest"})


class DroughtConfig(RuleConfig):
    warning_pct: float = Field(70.0, description="Available water % below which to irrigate (warning).")
    major_pct: float = Field(50.0, description="Available water % below which the vines are stressed (major).")
    clear_pct: float = Field(75.0, description="Clear at or above this available water %.")


@register
class Drought(PlotRule):
    type = "drought"
    Config = DroughtConfig
    stages = GROWING

    def evaluate(self, site: Site, data: PlotData, cfg: DroughtConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        vwc = data.raw.of("soil_vwc_pct")
        vwc = vwc[vwc["time_ns"] >= now_ns - 3600 * NS]
        if vwc.empty:
            return [self.hold(src)]
        p = data.plot
        mean_vwc = float(vwc["value"].mean())  # the root zone: both depths, the last hour
        aw = round((mean_vwc - p.wilting_point_pct) / (p.field_capacity_pct - p.wilting_point_pct) * 100, 1)
        return [self.graded(site, src, aw, warning=cfg.warning_pct, major=cfg.major_pct, clear=cfg.clear_pct,
                            rising=False, threshold_key="threshold_pct", plot=p.id, available_pct=aw,
                            vwc_pct=mean_vwc)]
