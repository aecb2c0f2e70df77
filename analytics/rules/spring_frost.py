"""Spring frost and winter freeze (docs/architecture.md "The kiwifruit numbers").

Spring frost, budbreak to fruit set: buds are damaged after 30 min at -1.5 to -2.0 C. In the evening a projected
minimum below the threshold before sunrise warns hours ahead (an evening already at freezing can warn too, opt-in:
cold_day_c). The coldest station of the plot counts (cold air pools low).

An alarm covers one night, noon to noon: raised in the evening or at night, it holds until the sun is up and
the air safely above frost, or until noon; it clears with what came of it: the frost and its minimum, or no
frost. A cold spell's next night is an alarm of its own: frost still on at noon ends the night's alarm and
starts the next one (Verdict.since_ns). The rule starts at noon before budbreak's date (stage_ahead_h), so its
first night is warned of that evening.

With a weather forecast configured (analytics/forecast), from the afternoon before (`forecast_from_hour`) a
night whose forecast minimum gives a chance of frost of at least `forecast_chance` pre-warns once that frost is
at most `forecast_lead_h` hours ahead, saying the forecast minimum, its hour and the chance; the readings' own
warnings take precedence when they fire.

Calibrated on the season harness (bench/season, seeds 31-34, never the seeds it is measured on). With the
harness's forecast: 80 alarms, 7 false (9 %), every one of the 54 damaging nights under an alarm and 50 warned
2 h or more ahead by one raised within 12 h; the forecast warning from 14:00 only within forecast_lead_h of the
frost (at 12 h its alarms came over 12 h before the frost; 8 h warned no more nights than 10 h), and never before
dawn (the readings judge that hour: at 06:00 a forecast frost the plot did not reach raised 5 false alarms). The
noon-to-noon night (a cold spell's nights each their own alarm), the 10 h lead and no pre-dawn forecast warning
took it from 37 nights warned and 12 of 55 alarms false to 46 and 7 of 81; starting the rule at noon before
budbreak's date (its first night had been a midnight switch-on nothing could warn of) to 50.
Without a forecast (and before those changes): the projection damped to 0.3 of the
evening trend over at most 8 hours, floored a degree under the dew point, warning at 0.25 C
below the threshold. With one alarm per night, the freezing-evening warning (air at 0 C) raised 83 alarms of
which 53 false (at -1.0 C: 21, 15 false) and warned no night in time that the projection did not (39 and 36 of 54
nights), so it is off by default (cold_day_c); without it 48 alarms, 7 false. The earlier settings (damping 0.6,
warning 0.5 C above the threshold, and the wet-bulb alert) warned 42 nights with 173 false. The wet-bulb alert
(frost protection should start when the wet bulb nears 0 C) is kept for orchards that run frost protection on
it, off by default: on its own it warned of no frost the projection missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from analytics.forecast import Forecast, chance_at_or_below
from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, coldest, minutes_below, plot_source, series
from orchard.indicators import dew_point_c, sunrise_utc, wet_bulb_c
from orchard.site import Site

NS = 1_000_000_000
FRESH_NS = 15 * 60 * NS  # older than this, the plot's temperature is unknown: hold


class SpringFrostConfig(RuleConfig):
    frost_c: float = Field(-1.5, description="Buds are damaged at or below this air temperature ...")
    duration_min: float = Field(30, description="... after this many minutes (critical).")
    wet_bulb_alert: bool = Field(False, description="Also warn when the wet bulb reaches wet_bulb_c at night (for "
                                 "orchards whose frost protection starts on it; off: alone it only adds false alarms).")
    wet_bulb_c: float = Field(1.0, description="Start frost protection when the wet-bulb temperature reaches this ...")
    wet_bulb_air_max_c: float = Field(3.0, description="... at night, with the air itself at or below this (a low "
                                                       "wet bulb in the dry air of a warm evening is no frost).")
    clear_margin_c: float = Field(1.0, description="Clear once air is this much above the frost threshold.")
    predict: bool = Field(True, description="Warn in the evening when the night's projected minimum is too low.")
    predict_from_hour: int = Field(16, ge=0, le=23, description="Local hour the evening projection starts.")
    predict_margin_c: float = Field(-0.25, description="Warn when the projected minimum is at or below frost_c plus "
                                    "this (negative: below it).")
    predict_damping: float = Field(0.3, gt=0, le=1, description="The share of the evening's cooling trend carried "
                                   "to sunrise (night cooling slows: Brunt's square root).")
    predict_horizon_h: float = Field(8.0, gt=0, description="Carry the trend at most this many hours ahead.")
    cold_day_c: float | None = Field(None, description="In the evening and at night, air at or below this warns of "
                                     "frost tonight (a cold spell: the day already at freezing). Off by default: on "
                                     "the harness it added false alarms and no night warned in time.")
    forecast: bool = Field(True, description="Pre-warn from the weather forecast (when one is configured, "
                           "ORCHARD_FORECAST__PROVIDER) from forecast_from_hour, the afternoon before the night.")
    forecast_from_hour: int = Field(14, ge=0, le=23, description="Local hour the forecast pre-warning starts.")
    forecast_spread_c: float = Field(2.0, gt=0, description="How far a forecast night minimum is typically off at "
                                     "the plot (standard deviation; an assumption to check with `orchard analytics "
                                     "replay` against the plot's own nights).")
    forecast_chance: float = Field(0.5, gt=0, le=1, description="Pre-warn when the chance of frost tonight is at "
                                   "least this.")
    forecast_lead_h: float = Field(10.0, gt=0, description="Pre-warn when the forecast's frost (its first hour with "
                                   "the chance) is at most this many hours ahead: the alarm is about tonight.")
    forecast_offset_c: float = Field(0.0, description="The plot's nights against the forecast's grid point (negative "
                                     "where cold air pools; set per plot).")


@register
class SpringFrost(PlotRule):
    type = "spring_frost"
    Config = SpringFrostConfig
    stages = frozenset({"budbreak", "flowering", "fruit_set"})
    stage_ahead_h = 12.0  # from the noon before budbreak's date: its first night is warned of that evening

    def evaluate(self, site: Site, data: PlotData, cfg: SpringFrostConfig, now_ns: int) -> Iterable[Verdict]:
        """Tonight's verdict; an alarm still on from the night before (noon to noon) ends and a new one begins."""
        since, ending = self.night_start_ns(site, now_ns), self.ending(data, now_ns, cfg)
        return [self.since(v, since, **ending) for v in self.tonight(site, data, cfg, now_ns, since, ending)]

    def tonight(self, site: Site, data: PlotData, cfg: SpringFrostConfig, now_ns: int, since: int,
                ending: dict[str, Any]) -> list[Verdict]:
        src = plot_source(data.plot)
        t = coldest(data)
        if t.empty or now_ns - int(t.index[-1]) > FRESH_NS:
            return [self.hold(src)]
        t_now = float(t.iloc[-1])
        rh = series(data.raw.of("rh_pct"))
        rh_now = float(rh.iloc[-1]) if not rh.empty else None
        wb = float(wet_bulb_c(t_now, rh_now)) if rh_now is not None else None
        below = minutes_below(t, cfg.frost_c)
        common = {"plot": data.plot.id, "temp_c": t_now, "threshold_c": cfg.frost_c}
        if t_now <= cfg.frost_c and below >= cfg.duration_min:
            return [self.signal(site, src, "critical", minutes=round(below), **common)]
        if t_now <= cfg.frost_c:
            return [self.signal(site, src, "major", minutes=round(below), **common)]
        evening = self.in_evening(site, now_ns, cfg.predict_from_hour)
        expected = self.next_sunrise(site, now_ns).strftime("%H:%M")
        if evening and cfg.cold_day_c is not None and t_now <= cfg.cold_day_c:
            return [self.signal(site, src, "warning", text="cold_day", expected_at=expected, minutes=0, **common)]
        if cfg.wet_bulb_alert and evening and wb is not None and wb <= cfg.wet_bulb_c \
                and t_now <= cfg.wet_bulb_air_max_c:
            return [self.signal(site, src, "warning", text="wet_bulb", wet_bulb_c=wb, wet_bulb_limit_c=cfg.wet_bulb_c,
                                minutes=0, **common)]
        projected = self.projected_min(site, t, rh, now_ns, cfg.predict_damping, cfg.predict_horizon_h) \
            if cfg.predict else None
        if projected is not None and evening and projected <= cfg.frost_c + cfg.predict_margin_c:
            return [self.signal(site, src, "warning", text="predicted", projected_min_c=projected, expected_at=expected,
                                minutes=0, **common)]
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        if cfg.forecast and data.forecast is not None and local.hour >= cfg.forecast_from_hour:
            ahead = self.forecast_night(site, data.forecast, now_ns, cfg)
            if ahead is not None:
                f_low, at, chance, first_s = ahead
                if chance >= cfg.forecast_chance and first_s - now_ns / NS <= cfg.forecast_lead_h * 3600:
                    return [self.signal(site, src, "warning", text="forecast", forecast_min_c=round(f_low, 1),
                                        expected_at=at, chance_pct=round(100 * chance), minutes=0, **common)]
        # A frost alarm covers the night: raised in the evening or at night, it holds until the sun is up and the
        # air is safely above frost (no raise, clear, raise again as a projection wavers), or until noon.
        # From noon a new night begins (noon to noon, as the truth of the harness counts nights): the alarm of
        # the night before, kept on by a frosty late morning, ends with what came of it, and the cold spell's next
        # night gets an alarm of its own. An afternoon's forecast warning the next run does not repeat is kept for
        # the night (its morning says whether the frost came).
        if evening or local.hour >= 12:
            return [self.clear(src, since_ns=since, **ending)]
        calm = t_now > cfg.frost_c + cfg.clear_margin_c and (not cfg.wet_bulb_alert or wb is None
                                                              or wb > cfg.wet_bulb_c + 0.5)
        if not calm:  # a cold morning: the night's alarm holds until noon
            return [self.hold(src)]
        # By day: the night is over. Its history says what came of it: the frost, or none (advisers learn how far
        # to trust an evening's warning).
        return [self.clear(src, **ending)]

    def ending(self, data: PlotData, now_ns: int, cfg: SpringFrostConfig) -> dict[str, Any]:
        """What came of the night just over, for its alarm's history: the frost or none, and its minimum."""
        low = self.night_min(data, now_ns)
        if low is None:
            return {}
        return {"outcome": "frost" if low <= cfg.frost_c else "no_frost", "observed_min_c": round(low, 1),
                "threshold_c": cfg.frost_c}

    @staticmethod
    def night_start_ns(site: Site, now_ns: int) -> int:
        """The start of the night under way, local noon to noon: an alarm raised before it is last night's."""
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
        if local < noon:
            noon -= timedelta(days=1)
        return int(noon.timestamp()) * NS

    def forecast_night(self, site: Site, forecast: Forecast, now_ns: int,
                       cfg: SpringFrostConfig) -> tuple[float, str, float, float] | None:
        """Tonight's forecast minimum until an hour after sunrise (with the plot's offset), the local time it
        is expected, the chance of frost it gives, and the start of the first hour that gives forecast_chance
        (inf when none does); None when the forecast does not reach that far."""
        until = self.next_sunrise(site, now_ns).timestamp() + 3600
        hours = [h for h in forecast.between(now_ns / NS, until) if h.air_temp_c is not None]
        if not hours or hours[-1].time_s + 3600 < until - 3600:
            return None
        coldest_hour, coldest_c = min(((h, h.air_temp_c) for h in hours if h.air_temp_c is not None),
                                      key=lambda pair: pair[1])
        low = coldest_c + cfg.forecast_offset_c
        at = datetime.fromtimestamp(coldest_hour.time_s, site.tz).strftime("%H:%M")
        first_s = min((h.time_s for h in hours if h.air_temp_c is not None and chance_at_or_below(
            h.air_temp_c + cfg.forecast_offset_c, cfg.frost_c, cfg.forecast_spread_c) >= cfg.forecast_chance),
            default=float("inf"))
        return low, at, chance_at_or_below(low, cfg.frost_c, cfg.forecast_spread_c), first_s

    @staticmethod
    def night_min(data: PlotData, now_ns: int) -> float | None:
        """The lowest air temperature of the last 18 hours (the night just over), from the hourly minima and the
        raw readings of the hour under way."""
        hourly = data.hourly.arrays_of("air_temp_c", "min")
        recent = hourly[1][hourly[0] >= now_ns - 18 * 3600 * NS]
        raw = coldest(data)
        lows = [float(recent.min())] if len(recent) else []
        lows += [float(raw.min())] if not raw.empty else []
        return min(lows) if lows else None

    @staticmethod
    def in_evening(site: Site, now_ns: int, from_hour: int) -> bool:
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        sunrise = sunrise_utc(*site.centre, local.date()).astimezone(site.tz)
        return local.hour >= from_hour or local < sunrise

    @staticmethod
    def next_sunrise(site: Site, now_ns: int) -> datetime:
        """The coming sunrise, local time: when a night's minimum is expected."""
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        sunrise = sunrise_utc(*site.centre, local.date()).astimezone(site.tz)
        if local >= sunrise:
            sunrise = sunrise_utc(*site.centre, local.date().fromordinal(local.date().toordinal() + 1)
                                  ).astimezone(site.tz)
        return sunrise

    @staticmethod
    def projected_min(site: Site, t: pd.Series, rh: pd.Series, now_ns: int, damping: float = 0.3,
                      horizon_h: float = 8.0) -> float | None:
        """The night's minimum from the last two hours' trend, damped (night cooling slows, as Brunt's square
        root law has it) and floored a degree under the dew point (dew and frost release heat)."""
        recent = t[t.index >= now_ns - 2 * 3600 * NS]
        if len(recent) < 10 or rh.empty:
            return None
        hours = (recent.index.to_numpy() - recent.index[-1]) / (3600 * NS)
        slope = float(np.polyfit(hours, recent.to_numpy(dtype=float), 1)[0])
        to_sunrise_h = (SpringFrost.next_sunrise(site, now_ns).timestamp() - now_ns / NS) / 3600
        t_now = float(t.iloc[-1])
        trend = t_now + min(slope, 0.0) * min(to_sunrise_h, horizon_h) * damping
        floor = float(dew_point_c(t_now, float(rh.iloc[-1]))) - 1.0
        return round(max(trend, floor), 2)
