"""Wind: gusts break young shoots from budbreak and rub fruit later in the season."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from orchard.site import Site

NS = 1_000_000_000


class WindConfig(RuleConfig):
    warning_ms: float = Field(14.0, description="Gust for a warning (force 7: young shoots snap).")
    major_ms: float = Field(20.0, description="Gust for a major alarm (force 8-9: canes and trellis at risk).")
    clear_ms: float = Field(12.0, description="Clear when the last 30 minutes' gusts stayed below this.")


@register
class Wind(PlotRule):
    type = "wind"
    Config = WindConfig
    stages = frozenset({"budbreak", "flowering", "fruit_set", "fruit_growth", "maturation"})

    def evaluate(self, site: Site, data: PlotData, cfg: WindConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        g = data.raw.of("wind_gust_ms")
        g = g[g["time_ns"] >= now_ns - 1800 * NS]
        if g.empty:
            return [self.hold(src)]
        gust = float(g["value"].max())
        return [self.graded(site, src, gust, warning=cfg.warning_ms, major=cfg.major_ms, clear=cfg.clear_ms,
                            rising=True, threshold_key="threshold_ms", plot=data.plot.id, gust_ms=gust)]
