"""Heat: above 35 C with about 5 hours of strong sun scorches leaf edges; more than 2 days of it drops leaves.

The hours are counted from the readings themselves: each hour adds the share of the plot's air readings in it
that stood at or above the threshold (analytics/window.py share_field), so one 35 C reading in an otherwise 33 C
hour adds a few minutes, not an hour.

With a weather forecast configured (analytics/forecast), from `forecast_from_hour` the next day's forecast (in
the morning, the rest of today's) pre-warns when it has `hours` hours at or above the threshold with a chance of
at least `forecast_chance` (the chance that its hours-th hottest hour really reaches it), until the readings
themselves say how hot it is."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from pydantic import Field

from analytics.forecast import Forecast, chance_at_or_below
from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from analytics.window import share_field
from orchard.site import Site

NS = 1_000_000_000
DAY_NS = 86400 * NS


class HeatConfig(RuleConfig):
    temp_c: float = Field(35.0, description="The air is hot at or above this (each reading counts on its own).")
    warning_hours: float = Field(2.0, description="Hours at or above it within 24 h that warn: heat is building, "
                                                  "irrigate and shade before it scorches.")
    hours: float = Field(5.0, description="Hours at or above it within 24 h that scorch leaves (major).")
    escalate_days: int = Field(2, description="Days in a row with that many hot hours: leaf drop (critical).")
    clear_below_c: float = Field(33.0, description="Clear after 24 h without a hot reading and air below this.")
    forecast: bool = Field(True, description="Pre-warn from the weather forecast, when one is configured.")
    forecast_from_hour: int = Field(14, ge=0, le=23, description="From this local hour the pre-warning is for the "
                                    "next day; before it, for the rest of today.")
    forecast_spread_c: float = Field(1.5, gt=0, description="How far a forecast afternoon temperature is typically "
                                     "off at the plot (standard deviation; an assumption to check with replay).")
    forecast_chance: float = Field(0.5, gt=0, le=1, description="Pre-warn when the chance of a scorching day is at "
                                   "least this.")


@register
class Heat(PlotRule):
    type = "heat"
    Config = HeatConfig
    stages = frozenset({"budbreak", "flowering", "fruit_set", "fruit_growth", "maturation", "post_harvest"})

    def shares(self, cfg: HeatConfig) -> Iterable[tuple[str, float]]:
        return [("air_temp_c", cfg.temp_c)]

    def evaluate(self, site: Site, data: PlotData, cfg: HeatConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        h = data.hourly.of("air_temp_c")
        if h.empty:
            return [self.hold(src)]
        times, hours = data.hourly.arrays_of(share_field("air_temp_c", cfg.temp_c), "mean")
        last24 = float(hours[times >= now_ns - 24 * 3600 * NS].sum())
        # Local days by the zone's offset now (the 4 days looked at rarely straddle a clock change).
        offset = datetime.fromtimestamp(now_ns / NS, site.tz).utcoffset()
        shift = int(offset.total_seconds()) * NS if offset else 0
        per_day: dict[int, float] = defaultdict(float)
        for day, n in zip(((times + shift) // DAY_NS).tolist(), hours.tolist(), strict=True):
            per_day[day] += n
        today = (now_ns + shift) // DAY_NS
        streak = 0
        for back in range(0, 4):
            if per_day.get(today - back, 0.0) >= cfg.hours:
                streak += 1
            elif back > 0:  # today may still be on its way
                break
        t_max = float(h["max"].iloc[-1])
        common = {"plot": data.plot.id, "hot_hours": round(last24, 1), "threshold_c": cfg.temp_c, "days": streak,
                  "temp_c": t_max}
        if streak >= cfg.escalate_days:
            return [self.signal(site, src, "critical", **common)]
        if last24 >= cfg.hours:
            return [self.signal(site, src, "major", **common)]
        if last24 >= cfg.warning_hours:
            return [self.signal(site, src, "warning", **common)]
        ahead = self.forecast_day(site, data.forecast, now_ns, cfg) if cfg.forecast and data.forecast else None
        if ahead is not None:
            return [self.signal(site, src, "warning", text="forecast", **ahead, plot=data.plot.id,
                                threshold_c=cfg.temp_c)]
        return [self.clear(src) if last24 == 0 and t_max < cfg.clear_below_c else self.hold(src)]

    @staticmethod
    def forecast_day(site: Site, forecast: Forecast, now_ns: int, cfg: HeatConfig) -> dict[str, object] | None:
        """The numbers of a pre-warning for the day ahead (tomorrow from forecast_from_hour, else the rest of
        today), or None when the forecast gives it less than forecast_chance (or does not reach that far)."""
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        tomorrow = local.hour >= cfg.forecast_from_hour
        day = local.date() + timedelta(days=1 if tomorrow else 0)
        start = datetime.combine(day, time(0), site.tz).timestamp()
        hours = [h.air_temp_c for h in forecast.between(max(start, now_ns / NS), start + 86400)
                 if h.air_temp_c is not None]
        need = max(1, math.ceil(cfg.hours))
        if len(hours) < need:
            return None
        kth = sorted(hours, reverse=True)[need - 1]
        chance = 1 - chance_at_or_below(kth, cfg.temp_c, cfg.forecast_spread_c)
        if chance < cfg.forecast_chance:
            return None
        return {"forecast_hours": sum(t >= cfg.temp_c for t in hours), "forecast_max_c": round(max(hours), 1),
                "chance_pct": round(100 * chance), "day_key": "alarm.day_tomorrow" if tomorrow else "alarm.day_today"}
