"""The harness's weather forecast: what a public forecast API (analytics/forecast) would have said about the
harness's own weather, so the rules' pre-warnings are measured as they would run in the village.

A forecast model sees the air mass of each day, not the plots: it is computed by the harness's weather model
for one grid point at the village's middle height (650 m) that has no cold-air pooling (a grid of 2-11 km does
not resolve a valley's cold pool), from each day's air mass with the errors of a forecast:

- the day's mean temperature off by a normal error whose standard deviation grows with the lead time, 1.2 C for
  the next 24 hours, 1.6 C for the day after (ECMWF's own verification of 2 m temperature at European
  stations: root-mean-square errors of about 1.5-2 K at day 1-2, Haiden et al., "Evaluation of ECMWF
  forecasts", ECMWF Technical Memoranda, yearly; we take the low end, the grid point's own error, and leave
  the plots' terrain to the offsets);
- cloud off by 0.2 (standard deviation of the 0-1 cover) and wind by a factor of exp(N(0, 0.3)): a clear night
  forecast as cloudy is the frost a forecast misses;
- successive runs for the same day share most of their error (correlation 0.7), as consecutive model runs do.

Runs are issued every 6 hours (00, 06, 12, 18 UTC) and available 4 hours later, 48 hourly values each. The
plots' offsets against the grid point (`spring_frost.plots.<id>.forecast_offset_c`) are fitted by `offsets`
from nights of calibration seeds, as a deployment fits them from its own records of a season.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta

from analytics.forecast import Forecast, ForecastHour
from bench.season.weather import LOCAL, DayWeather, PlotSpec, SeasonWeather, _PlotState, daylight

GRID = PlotSpec("grid", 650.0, 36.0, 14.0)
RUN_EVERY_S, RUN_DELAY_S, HOURS = 6 * 3600, 4 * 3600, 48
SIGMA_C = (1.2, 1.6, 2.0)  # per day of lead: 0-24 h, 24-48 h, beyond
CLOUD_SD, WIND_SD, SAME_RUN_SHARE = 0.2, 0.3, 0.7


class _Grid(_PlotState):
    pools = False


class HarnessForecast:
    """A ForecastSource over a SeasonWeather: fetch() answers with the latest run available at clock()."""

    name = "harness"

    def __init__(self, weather: SeasonWeather, clock: Callable[[], float], perfect: bool = False) -> None:
        self.weather, self.clock, self.perfect = weather, clock, perfect
        self.grid = _Grid(GRID)
        self._runs: dict[int, Forecast] = {}

    def fetch(self, latitude: float, longitude: float) -> Forecast:
        issued = (int(self.clock()) - RUN_DELAY_S) // RUN_EVERY_S * RUN_EVERY_S
        if issued not in self._runs:
            self._runs = {issued: self.run(issued)}
        return self._runs[issued]

    def run(self, issued_s: int) -> Forecast:
        """The run issued at `issued_s`: 48 hourly values from the next whole hour."""
        w = self.weather
        first = (issued_s // 3600 + 1) * 3600
        hours = []
        for h in range(HOURS):
            t = first + h * 3600
            k = (t - w.start_s) // 86400
            today, yesterday = self.day(issued_s, k), self.day(issued_s, k - 1)
            doy = (w.start + timedelta(days=int(k))).timetuple().tm_yday
            local_h = ((t + LOCAL) % 86400) / 3600
            temp, dew = self.grid._temperature(today, yesterday, doy, local_h)
            rh = 100 * math.exp(17.62 * dew / (243.12 + dew)) / math.exp(17.62 * temp / (243.12 + temp))
            night = local_h >= daylight(doy)[1] or local_h < daylight(doy)[0]
            shown = yesterday if night and local_h < 12 else today
            hours.append(ForecastHour(t, round(temp, 1), round(min(100.0, rh), 0),
                                      round(shown.wind_ms * (0.8 if night else 1.5), 1), round(100 * shown.cloud)))
        return Forecast("harness", issued_s + RUN_DELAY_S, tuple(hours))

    def day(self, issued_s: int, k: int) -> DayWeather:
        """Day k's air mass as the run issued at `issued_s` sees it."""
        w = self.weather
        real = w.by_day[max(0, min(int(k), w.days - 1))]
        if self.perfect:
            return real
        lead_d = max(0, int((w.start_s + k * 86400 - issued_s) // 86400))
        sd = SIGMA_C[min(lead_d, len(SIGMA_C) - 1)]
        shared = random.Random(f"fc:{w.seed}:{k}")
        own = random.Random(f"fc:{w.seed}:{k}:{issued_s}")
        mix = math.sqrt(1 - SAME_RUN_SHARE ** 2)

        def z() -> float:
            return SAME_RUN_SHARE * shared.gauss(0, 1) + mix * own.gauss(0, 1)

        return replace(real, mean_c=real.mean_c + sd * z(),
                       cloud=min(1.0, max(0.0, real.cloud + CLOUD_SD * z())),
                       wind_ms=real.wind_ms * math.exp(WIND_SD * z()))


def night_minima(weather: SeasonWeather) -> tuple[dict[date, float], dict[str, dict[date, float]]]:
    """Per night (the date of its evening): the minimum from 18:00 to 08:00 local forecast by the run available
    at 14:00 that afternoon, and each plot's observed minimum."""
    fc = HarnessForecast(weather, lambda: 0.0)
    forecast: dict[date, float] = {}
    observed: dict[str, dict[date, float]] = {p.id: {} for p in weather.plots}
    for k in range(weather.days - 1):
        evening = weather.start_s + k * 86400
        afternoon = evening + 14 * 3600
        run = fc.run((afternoon - RUN_DELAY_S) // RUN_EVERY_S * RUN_EVERY_S)
        temps = [h.air_temp_c for h in run.between(evening + 18 * 3600, evening + 32 * 3600)
                 if h.air_temp_c is not None]
        forecast[weather.start + timedelta(days=k)] = min(temps)
    for step in weather.samples():
        for s in step:
            local_h = ((s.time_s + LOCAL) % 86400) / 3600
            if 8 <= local_h < 18:
                continue
            night = weather.start + timedelta(days=(s.time_s - weather.start_s - (0 if local_h >= 18 else 86400))
                                              // 86400)
            mine = observed[s.plot]
            mine[night] = min(mine.get(night, 99.0), s.air_temp_c)
    return forecast, observed


def offsets(seeds: Sequence[int], plots: Sequence[PlotSpec], start: date, days: int,
            cold_c: float = 4.0) -> tuple[dict[str, float], float]:
    """Each plot's median night minimum against the forecast's, over the nights forecast at or below `cold_c`
    (the nights a frost warning is about), and the spread (standard deviation) of what is left: what a
    deployment fits from a season of its own records, here from calibration seeds."""
    diffs: dict[str, list[float]] = {p.id: [] for p in plots}
    for seed in seeds:
        forecast, observed = night_minima(SeasonWeather(seed, tuple(plots), start, days))
        for plot, nights in observed.items():
            diffs[plot] += [low - forecast[n] for n, low in nights.items() if n in forecast and forecast[n] <= cold_c]
    fitted = {p: round(statistics.median(d), 1) if d else 0.0 for p, d in diffs.items()}
    rest = [x - fitted[p] for p, d in diffs.items() for x in d]
    return fitted, round(statistics.pstdev(rest), 2) if len(rest) > 1 else 0.0


def offset_settings(fitted: Mapping[str, float]) -> list[str]:
    """The fitted offsets as `--set` settings."""
    return [f"spring_frost.plots.{p}.forecast_offset_c={v}" for p, v in sorted(fitted.items())]

