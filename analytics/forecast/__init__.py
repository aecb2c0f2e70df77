"""Weather forecasts for the rules' pre-warnings: hourly air temperature, humidity, wind and cloud for the next
48 hours at the village's centre.

One interface (`ForecastSource`), the real implementation a public forecast API (`openmeteo.OpenMeteo`), and a
saved response read from a file drop (`saved.SavedForecast`, the same JSON: a county server that fetches once
and hands it on, or a village without internet at the analytics host). `ForecastFeed` keeps the latest forecast,
fetches a new one when it is due, and gives none when there is no forecast young enough: the rules then work from
the readings alone, as they do when no forecast is configured.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchard.logs import event
from orchard.settings import ForecastSettings

log = logging.getLogger("orchard.analytics.forecast")


class ForecastError(Exception):
    """The forecast could not be had (service down, refused, or an answer that is not a forecast); the message
    says which and carries no credentials."""


@dataclass(frozen=True, slots=True)
class ForecastHour:
    time_s: int  # the hour's start, epoch seconds (UTC)
    air_temp_c: float | None
    rh_pct: float | None
    wind_ms: float | None
    cloud_pct: float | None


@dataclass(frozen=True, slots=True)
class Forecast:
    """One forecast as it was fetched: where from, when, and its hours in order."""

    source: str  # "open-meteo", "file"
    fetched_s: int
    hours: tuple[ForecastHour, ...]

    def covers(self, start_s: float, span_s: float) -> bool:
        """It has temperatures from the hour under way at `start_s` to `span_s` later (an old saved file, or
        an answer cut short, does not)."""
        known = [h.time_s for h in self.hours if h.air_temp_c is not None]
        return bool(known) and min(known) <= start_s and max(known) + 3600 >= start_s + span_s

    def between(self, start_s: float, end_s: float) -> list[ForecastHour]:
        """The hours from the one under way at `start_s` to `end_s` (exclusive)."""
        return [h for h in self.hours if h.time_s + 3600 > start_s and h.time_s < end_s]


class ForecastSource(Protocol):
    name: str

    def fetch(self, latitude: float, longitude: float) -> Forecast:
        """The forecast for the next 48 hours from now; raises ForecastError."""
        ...


def chance_at_or_below(forecast_c: float, threshold_c: float, spread_c: float) -> float:
    """The chance that the real value is at or below the threshold, taking the forecast's error as normal with
    the given spread (standard deviation)."""
    return 0.5 * math.erfc((forecast_c - threshold_c) / (spread_c * math.sqrt(2)))


def parse_open_meteo(body: object, source: str, fetched_s: int) -> Forecast:
    """An Open-Meteo /v1/forecast answer with `timeformat=unixtime` (https://open-meteo.com/en/docs): `hourly`
    holds `time` (epoch seconds) and one list per variable, null where the model has no value."""
    if not isinstance(body, dict):
        raise ForecastError("the forecast answer is not a JSON object")
    if body.get("error"):
        raise ForecastError(f"the forecast service refused the request: {str(body.get('reason', ''))[:200]}")
    hourly = body.get("hourly")
    if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
        raise ForecastError("the forecast answer has no hourly times")
    times = hourly["time"]

    def column(name: str) -> Sequence[object]:
        values = hourly.get(name)
        return values if isinstance(values, list) and len(values) == len(times) else [None] * len(times)

    def num(v: object) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None

    if not all(isinstance(t, int) for t in times):
        raise ForecastError("the forecast's times are not epoch seconds (ask with timeformat=unixtime)")
    temp, rh, wind, cloud = (column(n) for n in ("temperature_2m", "relative_humidity_2m", "wind_speed_10m",
                                                 "cloud_cover"))
    hours = tuple(ForecastHour(int(t), num(a), num(b), num(c), num(d))
                  for t, a, b, c, d in zip(times, temp, rh, wind, cloud, strict=True))
    if not any(h.air_temp_c is not None for h in hours):
        raise ForecastError("the forecast has no temperatures")
    return Forecast(source, fetched_s, hours)


class ForecastFeed:
    """The latest forecast for the village, fetched every `refresh_s` (a failure tries again after `retry_s`),
    used while it is at most `max_age_s` old. It fetches only when asked with fetch=True (the full cycle), so a
    reading's quick cycle never waits on the network. Failures are logged once per outage, and when it ends."""

    def __init__(self, source: ForecastSource, latitude: float, longitude: float, refresh_s: float = 3600,
                 retry_s: float = 600, max_age_s: float = 6 * 3600) -> None:
        self.source, self.latitude, self.longitude = source, latitude, longitude
        self.refresh_s, self.retry_s, self.max_age_s = refresh_s, retry_s, max_age_s
        self.forecast: Forecast | None = None
        self.next_try_s = -math.inf
        self.failing = False

    def latest(self, now_s: float, fetch: bool = True) -> Forecast | None:
        if fetch and now_s >= self.next_try_s:
            try:
                got = self.source.fetch(self.latitude, self.longitude)
            except ForecastError as e:
                self.next_try_s = now_s + self.retry_s
                if not self.failing:
                    event(log, "forecast_failed", logging.WARNING, source=self.source.name, error=str(e),
                          retry_s=self.retry_s, hint="the rules warn from the readings alone until it is back")
                self.failing = True
            else:
                self.forecast = Forecast(got.source, int(now_s), got.hours)  # its age on the clock judged by
                self.next_try_s = now_s + self.refresh_s
                if self.failing:
                    event(log, "forecast_back", source=self.source.name, hours=len(got.hours))
                self.failing = False
        f = self.forecast
        if f is None or now_s - f.fetched_s > self.max_age_s or not f.covers(now_s, 12 * 3600):
            return None
        return f


def feed_for(cfg: ForecastSettings, latitude: float, longitude: float) -> ForecastFeed | None:
    """The feed the settings ask for, or None (no forecast configured). Nothing is fetched here."""
    source: ForecastSource
    if cfg.provider == "none":
        return None
    if cfg.provider == "file":
        from analytics.forecast.saved import SavedForecast

        if cfg.file is None:
            raise ValueError("forecast provider 'file' needs ORCHARD_FORECAST__FILE (the saved forecast's path)")
        source = SavedForecast(cfg.file)
    else:
        from analytics.forecast.openmeteo import OpenMeteo

        source = OpenMeteo(cfg.url, cfg.models, cfg.timeout_s)
    return ForecastFeed(source, latitude, longitude, cfg.refresh_min * 60, cfg.retry_min * 60, cfg.max_age_h * 3600)
