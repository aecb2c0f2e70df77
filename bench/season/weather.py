"""The harness's own weather: a physically based model of a hill village in Cangxi (31.7 N, 106.0 E), written
apart from the demo simulator (sensors/weather.py) so the rules are measured on weather they were not tuned on.

Where the simulator draws frost nights and heat waves as day-level events, here they emerge from the physics:

- The air mass: a daily mean temperature from the county's climate (5.5 C in January to 27 C in July) plus an
  AR(1) anomaly (persistence 0.75, so cold spells last days); a wet/dry Markov chain per month; cloud and wind
  by day, with the calm, clear nights that follow a cold front more likely after rain.
- By day, sunshine: a sine from the dawn minimum to a 14:30 maximum whose range grows with clear sky and the
  season.
- By night, radiative cooling after Brunt's square-root law, T(t) = T(sunset) - k * sqrt(hours since sunset),
  with k set by the clear-sky net longwave loss: largest on clear, calm nights, small under cloud or wind. When
  the air reaches its dew point, dew forms and releases latent heat, which slows the cooling (halved).
- Elevation: by day the standard lapse rate (6.5 C/km); on a clear, calm night cold air drains into the valley
  and an inversion forms, so the lowest plots are the coldest (up to 3 C over 500 m).
- Humidity from the dew point (Magnus); leaf wetness from rain and dew; soil water from a bucket with
  Hargreaves evapotranspiration (FAO-56) and a kiwifruit crop coefficient.

Every value is a function of (seed, plot, time), computed forward in 10-minute steps; nothing here reads the
rules' thresholds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

STEP_S = 600
LAT = math.radians(31.7)
LOCAL = 8 * 3600  # Asia/Shanghai
# Per month: chance that a day is wet after a dry one and after a wet one (a wet/dry Markov chain whose long-run
# share matches Cangxi's rain days), and the mean rain of a wet day (mm); about 1,000 mm a year, mostly Jun-Sep.
WET = [(0.15, 0.45, 3), (0.18, 0.50, 4), (0.25, 0.55, 6), (0.30, 0.60, 9), (0.30, 0.62, 12), (0.35, 0.65, 15),
       (0.35, 0.65, 18), (0.28, 0.60, 17), (0.35, 0.65, 14), (0.32, 0.60, 8), (0.22, 0.50, 4), (0.15, 0.45, 3)]


@dataclass(frozen=True, slots=True)
class PlotSpec:
    id: str
    elevation_m: float
    field_capacity_pct: float
    wilting_point_pct: float


@dataclass(frozen=True, slots=True)
class DayWeather:
    mean_c: float  # the air mass's daily mean at 500 m
    cloud: float  # 0 clear .. 1 overcast
    wind_ms: float
    dew_depression_c: float  # how far below the day's minimum the dew point sits
    rain: tuple[tuple[float, float, float], ...]  # (start hour local, hours, mm/h)


@dataclass(frozen=True, slots=True)
class Sample:
    """One 10-minute reading of a plot."""

    time_s: int
    plot: str
    air_temp_c: float
    rh_pct: float
    leaf_wetness_pct: float
    rain_mm: float
    wind_gust_ms: float
    soil_vwc_pct: float


def climate_mean_c(doy: int) -> float:
    """Cangxi's seasonal daily mean at 500 m: 5.5 C about 15 January, 27 C about 15 July."""
    return 16.25 - 10.75 * math.cos(2 * math.pi * (doy - 15) / 365)


def daylight(doy: int) -> tuple[float, float]:
    """(sunrise, sunset) in local solar hours, from the solar declination (Cooper's formula)."""
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    half = math.degrees(math.acos(max(-1.0, min(1.0, -math.tan(LAT) * math.tan(decl))))) / 15
    noon = 12 + (120 - 106.0) / 15  # the county is 14 degrees west of the zone's meridian: noon at 12:56
    return noon - half, noon + half


def extraterrestrial_mm(doy: int) -> float:
    """Ra in mm/day of evaporation equivalent (FAO-56 eq. 21), for Hargreaves."""
    dr = 1 + 0.033 * math.cos(2 * math.pi * doy / 365)
    decl = 0.409 * math.sin(2 * math.pi * doy / 365 - 1.39)
    ws = math.acos(-math.tan(LAT) * math.tan(decl))
    ra = 24 * 60 / math.pi * 0.082 * dr * (ws * math.sin(LAT) * math.sin(decl)
                                           + math.cos(LAT) * math.cos(decl) * math.sin(ws))
    return 0.408 * ra


def magnus_rh(t_c: float, td_c: float) -> float:
    def es(x: float) -> float:
        return 6.112 * math.exp(17.62 * x / (243.12 + x))
    return max(5.0, min(100.0, 100 * es(td_c) / es(t_c)))


class SeasonWeather:
    """The weather of one seed over a span of days, plot by plot, in 10-minute steps."""

    def __init__(self, seed: int, plots: tuple[PlotSpec, ...], start: date, days: int) -> None:
        self.seed, self.plots, self.start, self.days = seed, plots, start, days
        self.start_s = int(datetime.combine(start, datetime.min.time(), UTC).timestamp()) - LOCAL  # local midnight
        self.by_day = self._synoptic()

    def _synoptic(self) -> list[DayWeather]:
        rng = random.Random(f"season:{self.seed}")
        anomaly, wet, out = 0.0, False, []
        for k in range(self.days):
            day = self.start + timedelta(days=k)
            doy = day.timetuple().tm_yday
            p_dry_wet, p_wet_wet, mm = WET[day.month - 1]
            was_wet = wet
            wet = rng.random() < (p_wet_wet if wet else p_dry_wet)
            anomaly = 0.75 * anomaly + rng.gauss(0, 2.8 if day.month in (12, 1, 2, 3, 4) else 1.6)
            if was_wet and not wet:
                anomaly -= rng.uniform(1.0, 3.5)  # the cold, dry air behind a front
            if wet:
                cloud = rng.uniform(0.8, 1.0)
            else:  # dry days: clearer after rain, hazier in the humid summer
                cloud = min(1.0, max(0.0, rng.betavariate(1.2, 2.2 if was_wet else 1.6)
                                     + (0.15 if day.month in (6, 7, 8) else 0.0)))
            wind = rng.lognormvariate(math.log(1.6), 0.45) * (0.7 if (was_wet and not wet) else 1.0)
            dep = rng.uniform(0.2, 1.5) if wet else rng.uniform(1.0, 6.0) * (1.4 if was_wet else 1.0)
            rain: tuple[tuple[float, float, float], ...] = ()
            if wet:
                total = rng.expovariate(1 / mm)
                events = rng.randint(1, 3)
                rain = tuple((rng.uniform(0, 23), hours, total / events / hours)
                             for hours in (rng.uniform(1, 6) for _ in range(events)))
            out.append(DayWeather(climate_mean_c(doy) + anomaly, cloud, wind, dep, rain))
        return out

    def samples(self) -> Iterator[list[Sample]]:
        """Every 10-minute step from the first day's midnight to the last day's end: one Sample per plot."""
        state = {p.id: _PlotState(p) for p in self.plots}
        for step in range(self.days * 86400 // STEP_S):
            t = self.start_s + step * STEP_S
            yield [state[p.id].step(self, t) for p in self.plots]


class _PlotState:
    """What a plot carries from step to step: the soil's water and the night's cooling so far."""

    pools = True  # cold air drains into this plot's hollow on clear, calm nights (a forecast grid point: no)

    def __init__(self, plot: PlotSpec) -> None:
        self.plot = plot
        self.vwc = plot.field_capacity_pct - 2.0
        self.rng = random.Random(f"plot:{plot.id}")
        self.micro = 0.0  # a small, slow plot-level fluctuation (sensor siting, canopy)

    def step(self, w: SeasonWeather, t: int) -> Sample:
        local_h = ((t + LOCAL) % 86400) / 3600
        k = min((t - w.start_s) // 86400, w.days - 1)
        today = w.by_day[k]
        yesterday = w.by_day[k - 1] if k > 0 else today
        doy = (w.start + timedelta(days=k)).timetuple().tm_yday
        self.micro = 0.97 * self.micro + self.rng.gauss(0, 0.05)
        temp, td = self._temperature(today, yesterday, doy, local_h)
        temp += self.micro
        rain = sum(mm_h * STEP_S / 3600 for start, hours, mm_h in today.rain if start <= local_h < start + hours)
        rh = 98.0 if rain > 0 else magnus_rh(temp, td)
        wet = 100.0 if rain > 0 or rh >= 95 else 0.0
        gust = max(0.0, (today.wind_ms * (1.5 if 10 <= local_h <= 18 else 0.8)) * self.rng.uniform(1.3, 2.0))
        self._soil(today, doy, rain)
        return Sample(t, self.plot.id, round(temp, 2), round(rh, 1), wet, round(rain, 2), round(gust, 1),
                      round(self.vwc, 2))

    def _temperature(self, today: DayWeather, yesterday: DayWeather, doy: int, h: float) -> tuple[float, float]:
        """(air temperature, dew point) at local hour h: the night's cooling, or the day's sunshine curve from
        the dawn the night left to the 14:30 maximum and down to sunset."""
        rise, sset = daylight(doy)
        if h >= sset:
            return self._night(today, doy, h - sset)
        if h < rise:
            return self._night(yesterday, doy, h + 24 - sset)
        dawn, _ = self._night(yesterday, doy, rise + 24 - sset)
        t_max, t_set = self._day_range(today, doy)
        peak = 14.5
        if h <= peak:
            temp = dawn + (t_max - dawn) * math.sin(math.pi / 2 * (h - rise) / (peak - rise))
        else:
            temp = t_max - (t_max - t_set) * (h - peak) / (sset - peak)
        return temp, self._dew(today, doy)

    def _day_range(self, day: DayWeather, doy: int) -> tuple[float, float]:
        """(14:30 maximum, sunset temperature) of the air mass at this plot's height: the day's range grows with
        clear sky and the season's sun; the standard lapse rate by day."""
        season = 0.8 + 0.4 * math.sin(2 * math.pi * (doy - 80) / 365)
        dtr = (3.0 + 9.0 * (1 - day.cloud)) * season
        lapse = -6.5 * (self.plot.elevation_m - 500) / 1000
        t_max = day.mean_c + dtr / 2 + lapse
        return t_max, t_max - 0.35 * dtr

    @staticmethod
    def _dew(day: DayWeather, doy: int) -> float:
        """The air mass's dew point: the same moisture at every plot's height (it does not follow the lapse rate),
        some way below the day's minimum."""
        season = 0.8 + 0.4 * math.sin(2 * math.pi * (doy - 80) / 365)
        return day.mean_c - (3.0 + 9.0 * (1 - day.cloud)) * season / 2 - day.dew_depression_c

    def _night(self, night: DayWeather, doy: int, hours: float) -> tuple[float, float]:
        """Brunt's square-root cooling from sunset, strongest clear and calm, with cold air pooling low down and
        dew's latent heat slowing the fall once the air reaches its dew point."""
        _, t_set = self._day_range(night, doy)
        dew = self._dew(night, doy)
        calm = 1 / (1 + 0.35 * night.wind_ms)
        k = 2.6 * (1 - 0.85 * night.cloud) * calm  # C per sqrt(hour): clear and calm about 2.6
        inversion = 7.0 * (1 - night.cloud) * calm * min(1.0, hours / 6)  # up to +14 C/km over the lowest 500 m
        relative = min(1.0, max(0.0, (self.plot.elevation_m - 400) / 500))
        temp = t_set - k * math.sqrt(max(0.0, hours)) - (inversion * (1 - relative) if self.pools else 0.0)
        if temp < dew + 1:  # dew forming: its latent heat halves the cooling below this point
            temp = dew + 1 - (dew + 1 - temp) / 2
        return temp, min(dew, temp)

    def _soil(self, today: DayWeather, doy: int, rain_mm: float) -> None:
        """A 400 mm root zone: rain in (what the soil can hold), Hargreaves ETc out, per 10 minutes."""
        fc, wp = self.plot.field_capacity_pct, self.plot.wilting_point_pct
        root_mm = 400.0
        dtr = 3.0 + 9.0 * (1 - today.cloud)
        et0 = max(0.0, 0.0023 * (today.mean_c + 17.8) * math.sqrt(dtr) * extraterrestrial_mm(doy))
        kc = 0.4 if doy < 75 or doy > 320 else 1.05  # dormant vines, or a full canopy (FAO-56 table 12)
        stress = min(1.0, max(0.0, (self.vwc - wp) / (0.5 * (fc - wp))))  # less water, less uptake
        self.vwc -= et0 * kc * stress * STEP_S / 86400 / root_mm * 100
        self.vwc = min(fc + 3, self.vwc + rain_mm * 0.8 / root_mm * 100)
        if self.vwc > fc:  # drainage back to field capacity within about a day
            self.vwc -= (self.vwc - fc) * STEP_S / 86400
