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

Runs are issued every 6 hours (00, 06, 12, 18 UTC) and available 4 hours later, 48 hourly values each. On the
calibration seeds the plots' night minima on cold nights sit within a degree of the grid point's (the day's lapse
and the night's pooling about cancel at these heights), so the plots' offsets stay at 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from analytics.forecast import Forecast, ForecastHour
from bench.season.weather import LOCAL, DayWeather, PlotSpec, SeasonWeather, _PlotState, daylight, magnus_rh

GRID = PlotSpec("grid", 650.0, 36.0, 14.0)
RUN_EVERY_S, RUN_DELAY_S, HOURS = 6 * 3600, 4 * 3600, 48
SIGMA_C = (1.2, 1.6, 2.0)  # per day of lead: 0-24 h, 24-48 h, beyond
CLOUD_SD, WIND_SD, SAME_RUN_SHARE = 0.2, 0.3, 0.7


class _Grid(_PlotState):
    pools = False


class HarnessForecast:
    """A ForecastSource over a SeasonWeather: fetch() answers with the latest run available at clock()."""

    name = "harness"

    def __init__(self, weather: SeasonWeather, clock: Callable[[], float]) -> None:
        self.weather, self.clock = weather, clock
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
            night = local_h >= daylight(doy)[1] or local_h < daylight(doy)[0]
            shown = yesterday if night and local_h < 12 else today
            hours.append(ForecastHour(t, round(temp, 1), round(magnus_rh(temp, dew)),
                                      round(shown.wind_ms * (0.8 if night else 1.5), 1), round(100 * shown.cloud)))
        return Forecast("harness", issued_s + RUN_DELAY_S, tuple(hours))

    def day(self, issued_s: int, k: int) -> DayWeather:
        """Day k's air mass as the run issued at `issued_s` sees it."""
        w = self.weather
        real = w.by_day[max(0, min(int(k), w.days - 1))]
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

