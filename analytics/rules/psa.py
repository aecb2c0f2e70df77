"""Psa (bacterial canker, Pseudomonas syringae pv. actinidiae): infection weather over the last 3 days.

A Beresford-style index: every wet hour adds a temperature weight that peaks at 15 C and vanishes at 5 and
25 C; days with a mean of 20 C or more add nothing (no infection). An hour is wet when the leaf-wetness sensor
says so, when it rained, or, on plots without a wetness sensor, when RH is above 81%. 'Hongyang' is highly
susceptible: its index is weighted up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo

import numpy as np
from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from analytics.window import Readings
from orchard.site import Site

NS = 1_000_000_000


def temperature_weight(t_c: np.ndarray) -> np.ndarray:
    """1 at 15 C, 0.75 at 10 and 20 C, 0 at or beyond 5 and 25 C."""
    return np.clip(1 - ((t_c - 15.0) / 10.0) ** 2, 0.0, 1.0)


def psa_index(hourly: Readings, since_ns: int, tz: tzinfo, wet_pct: float = 50.0,
              rh_pct: float = 81.0) -> tuple[float, int]:
    """(index, wet hours) of a plot's hourly means from since_ns on (numpy over the hours: this runs for every
    plot every cycle)."""
    cols: dict[str, dict[int, float]] = {}
    for f in ("air_temp_c", "rh_pct", "leaf_wetness_pct", "rain_mm"):
        a = hourly.arrays_of(f, "mean")
        keep = a[0] >= since_ns
        cols[f] = dict(zip(a[0][keep].tolist(), a[1][keep].tolist(), strict=True))
    temps = cols["air_temp_c"]
    if not temps:
        return 0.0, 0
    hours = np.array(sorted(temps), dtype=np.int64)
    t = np.array([temps[h] for h in hours.tolist()])
    if cols["leaf_wetness_pct"]:
        wet = np.array([cols["leaf_wetness_pct"].get(h, 0.0) >= wet_pct for h in hours.tolist()])
    else:
        wet = np.array([cols["rh_pct"].get(h, 0.0) > rh_pct for h in hours.tolist()])
    if cols["rain_mm"]:
        wet |= np.array([cols["rain_mm"].get(h, 0.0) > 0 for h in hours.tolist()])
    # The local day of each hour, and whether that day's mean reached 20 C (no infection then).
    days = np.array([datetime.fromtimestamp(h / NS, tz).toordinal() for h in hours.tolist()])
    warm = np.zeros(len(hours), dtype=bool)
    for d in np.unique(days):
        on = days == d
        warm[on] = t[on].mean() >= 20
    weight = temperature_weight(t) * ~warm
    return float((weight * wet).sum()), int(wet.sum())


class PsaConfig(RuleConfig):
    warning_index: float = Field(12.0, description="3-day index for a warning (about half a day wet at 15 C).")
    major_index: float = Field(24.0, description="3-day index for a major alarm (a whole wet day at 15 C).")
    clear_index: float = Field(8.0, description="Clear below this.")
    susceptibility: dict[str, float] = Field(
        default_factory=lambda: {"hongyang": 1.5, "hayward": 1.0, "jinyan": 0.8, "cuixiang": 1.0},
        description="Index weight per variety ('Hongyang' is highly susceptible).")
    wet_pct: float = Field(50.0, description="Leaf wetness % from which an hour counts as wet.")
    rh_pct: float = Field(81.0, description="RH above which an hour counts as wet where there is no wetness sensor.")


@register
class Psa(PlotRule):
    type = "psa_risk"
    Config = PsaConfig
    stages = frozenset({"post_harvest", "dormancy", "budbreak", "flowering"})  # cool, wet seasons and leaf scars

    def evaluate(self, site: Site, data: PlotData, cfg: PsaConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        since = now_ns - 72 * 3600 * NS
        temps = data.hourly.of("air_temp_c")
        if int((temps["time_ns"] >= since).sum()) < 48:
            return [self.hold(src)]  # not enough of the three days to judge
        raw, wet_hours = psa_index(data.hourly, since, site.tz, cfg.wet_pct, cfg.rh_pct)
        index = raw * cfg.susceptibility.get(data.plot.variety, 1.0)
        return [self.graded(site, src, index, warning=cfg.warning_index, major=cfg.major_index,
                            clear=cfg.clear_index, rising=True, threshold_key="threshold", plot=data.plot.id,
                            index=index, wet_hours=wet_hours)]
