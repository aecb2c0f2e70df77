"""Winter freeze in dormancy: dormant buds die below -10 C ('Hayward' fruitful shoots from -11 C)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, coldest, minutes_below, plot_source
from orchard.site import Site

NS = 1_000_000_000
FRESH_NS = 15 * 60 * NS  # older than this, the plot's temperature is unknown: hold


class WinterFreezeConfig(RuleConfig):
    warning_c: float = Field(-7.0, description="Warn at or below this air temperature in dormancy.")
    critical_c: dict[str, float] = Field(
        default_factory=lambda: {"hongyang": -10.0, "hayward": -11.0},
        description="Dormant buds die below this, per variety ('Hayward' fruitful shoots from -11 C).")
    default_critical_c: float = Field(-10.0, description="For varieties not listed in critical_c.")
    duration_min: float = Field(30, description="Minutes below the critical temperature before it is critical.")


@register
class WinterFreeze(PlotRule):
    type = "winter_freeze"
    Config = WinterFreezeConfig
    stages = frozenset({"dormancy"})

    def evaluate(self, site: Site, data: PlotData, cfg: WinterFreezeConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        t = coldest(data)
        if t.empty or now_ns - int(t.index[-1]) > FRESH_NS:
            return [self.hold(src)]
        t_now = float(t.iloc[-1])
        critical = cfg.critical_c.get(data.plot.variety, cfg.default_critical_c)
        below = minutes_below(t, critical)
        common = {"plot": data.plot.id, "temp_c": t_now, "minutes": round(below)}
        if t_now <= critical:
            severity = "critical" if below >= cfg.duration_min else "major"
            return [self.signal(site, src, severity, threshold_c=critical, **common)]
        if t_now <= cfg.warning_c:
            return [self.signal(site, src, "warning", threshold_c=cfg.warning_c, **common)]
        return [self.clear(src) if t_now > cfg.warning_c + 1.0 else self.hold(src)]
