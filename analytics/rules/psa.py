"""Psa (bacterial canker, Pseudomonas syringae pv. actinidiae): the infection risk index of Beresford, Tyson &
Henshall (2017, Phytopathology 107:184), as the season harness's truth states it.

M sums, over the hours of the last three local days (today so far included), a temperature weight that peaks at
15 C and vanishes at 5 and 25 C, for the hours that are wet: the leaf-wetness sensor says so, or it rained, or,
on plots without a wetness sensor, RH is above 81% (their R'). Days with a mean of 20 C or more add nothing. The
risk index R is M on a day with more than 1 mm of rain (rain moves the bacteria to wounds and leaf scars) and
zero otherwise. Froud, Cogger & Beresford (2018, Acta Hortic. 1218) found R of about 25 associated with severe
canker: the warning. 'Hongyang' is highly susceptible: its major level comes sooner. It applies all year: leaf
fall and winter pruning wounds are infection sites too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

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
    """(M, wet hours) of a plot's hourly means from since_ns on (numpy over the hours: this runs for every plot
    every cycle)."""
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


def rain_since(hourly: Readings, since_ns: int, gauges: int) -> float:
    """mm of rain since then: the hourly totals over the plot's gauges, per gauge (a plot's stations all read
    the same rain)."""
    times, total = hourly.arrays_of("rain_mm", "sum")
    if not len(times):
        times, total = hourly.arrays_of("rain_mm", "mean")  # a table without totals: its hourly values
    return float(total[times >= since_ns].sum()) / max(1, gauges)


# What to do differs by season (the infection sites differ): the advice variant per growth stage.
ADVICE_BY_STAGE = {"dormancy": "winter", "budbreak": "spring", "flowering": "spring", "fruit_set": "summer",
                   "fruit_growth": "summer", "maturation": "summer", "post_harvest": "leaf_fall"}


class PsaConfig(RuleConfig):
    warning_index: float = Field(25.0, description="R for a warning: the level associated with severe canker "
                                 "(Froud, Cogger & Beresford 2018).")
    major_index: float = Field(50.0, description="R for a major alarm (for a variety of susceptibility 1).")
    clear_index: float = Field(15.0, description="Clear below this (R is 0 on a day without rain).")
    rain_mm: float = Field(1.0, description="Rain of the day from which R counts (Beresford et al. 2017).")
    susceptibility: dict[str, float] = Field(
        default_factory=lambda: {"hongyang": 1.5, "hayward": 1.0, "jinyan": 0.8, "cuixiang": 1.0},
        description="Per variety: the major level is divided by this ('Hongyang' is highly susceptible).")
    wet_pct: float = Field(50.0, description="Leaf wetness % from which an hour counts as wet.")
    rh_pct: float = Field(81.0, description="RH above which an hour counts as wet where there is no wetness sensor.")


@register
class Psa(PlotRule):
    type = "psa_risk"
    Config = PsaConfig

    def evaluate(self, site: Site, data: PlotData, cfg: PsaConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        today = int(midnight.timestamp() * NS)
        since = int((midnight - timedelta(days=2)).timestamp() * NS)  # the three local days, today's so far
        temps = data.hourly.of("air_temp_c")
        if int((temps["time_ns"] >= since).sum()) < 36:
            return [self.hold(src)]  # not enough of the three days to judge
        m, wet_hours = psa_index(data.hourly, since, site.tz, cfg.wet_pct, cfg.rh_pct)
        rain = rain_since(data.hourly, today, len(data.stations))
        index = m if rain > cfg.rain_mm else 0.0
        major = cfg.major_index / cfg.susceptibility.get(data.plot.variety, 1.0)
        return [self.graded(site, src, index, warning=cfg.warning_index, major=max(major, cfg.warning_index),
                            clear=cfg.clear_index, rising=True, threshold_key="threshold", plot=data.plot.id,
                            index=index, wet_hours=wet_hours, advice=ADVICE_BY_STAGE.get(data.stage, ""),
                            # a highly susceptible variety's text says so; the others' do not
                            text="susceptible" if cfg.susceptibility.get(data.plot.variety, 1.0) > 1 else "")]
