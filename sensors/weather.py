"""A deterministic weather model for Cangxi county, Sichuan (31.7 N, 106.0 E, hilly, about 500 m).

Every quantity is a function of (seed, time): the same seed gives the same weather whether it is computed
live or in a backfill, and nothing needs to be integrated step by step. Day-level choices (anomaly, cloud,
rain events, frost nights, heat waves) come from a random generator keyed on (seed, day).

Climate: monthly mean 5.5 C in January to 27 C in July; diurnal range ~8 C (less when overcast); wet summers
(about 1,000 mm a year, most from June to September); kiwifruit budbreak in early March makes clear March
nights the frost risk; July-August heat waves push afternoons above 35 C.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

DAY_S = 86400
TZ_OFFSET_S = 8 * 3600  # Asia/Shanghai, no daylight saving
LAT = math.radians(31.7)

# Per month: chance of a rainy day, typical rain per rainy day (mm).
_RAIN = [(0.20, 2), (0.25, 3), (0.35, 5), (0.45, 8), (0.45, 12), (0.50, 16),
         (0.50, 20), (0.40, 18), (0.50, 15), (0.45, 8), (0.30, 4), (0.20, 2)]


def stable_rng(*key: object) -> random.Random:
    """A generator keyed on values, stable across processes (unlike hash())."""
    return random.Random(":".join(map(str, key)))


@dataclass(frozen=True, slots=True)
class Day:
    anomaly_c: float  # whole-day departure from the seasonal mean
    cloud: float  # 0 clear .. 1 overcast
    rain: tuple[tuple[float, float, float], ...]  # (start hour local, duration h, mm/h)
    frost_c: float  # extra cooling before dawn on a radiative frost night (<= 0)
    heat_c: float  # extra afternoon heat during a heat wave (>= 0)
    wind_ms: float


def local_day(t_s: float) -> int:
    return int((t_s + TZ_OFFSET_S) // DAY_S)


@lru_cache(maxsize=4096)
def day_of_year(day: int) -> int:
    """0-based day of the year of a day number (days since 1970-01-01, local)."""
    return (date(1970, 1, 1) + timedelta(days=day)).timetuple().tm_yday - 1


@lru_cache(maxsize=4096)
def day_params(seed: int, day: int) -> Day:
    rng = stable_rng(seed, "day", day)
    doy = day_of_year(day)
    month = min(11, doy * 12 // 365)
    p_rain, mm = _RAIN[month]
    rainy = rng.random() < p_rain
    cloud = min(1.0, rng.uniform(0.6, 1.0) if rainy else rng.betavariate(1.2, 2.5))
    rain: list[tuple[float, float, float]] = []
    if rainy:
        for _ in range(rng.choice((1, 1, 2))):
            dur = rng.uniform(1, 8)
            total = rng.expovariate(1 / mm)
            rain.append((rng.uniform(0, 24 - 1), dur, min(40.0, total / dur)))
    # Radiative frost: clear, calm nights from late February to mid April (budbreak to flowering).
    frost = 0.0
    if 50 <= doy <= 105 and cloud < 0.35 and rng.random() < 0.35:
        frost = -rng.uniform(5.5, 10.5)  # clear-sky dawns of -1 to -4 C, the budbreak danger
    # Heat waves: whole weeks of July-August are keyed together, so a hot spell lasts several days.
    heat = 0.0
    week = stable_rng(seed, "heatwave", day // 5)
    if 180 <= doy <= 240 and week.random() < 0.35 and not rainy:
        heat = week.uniform(5.5, 9.0) * (0.8 + 0.4 * rng.random())
    wind = rng.uniform(0.8, 3.0) + (rng.uniform(2, 6) if rainy else 0)
    return Day(rng.gauss(0, 1.8), cloud, tuple(rain), frost, heat, wind)


def seasonal_mean_c(doy: float) -> float:
    return 16.3 - 10.8 * math.cos(2 * math.pi * (doy - 17) / 365)


def _diurnal(hour: float) -> float:
    """-1 at 06:00, +1 at 15:00 local, a smooth asymmetric cycle."""
    if 6 <= hour < 15:
        return -math.cos(math.pi * (hour - 6) / 9)
    h = hour - 15 if hour >= 15 else hour + 9
    return math.cos(math.pi * h / 15)


def rain_rate(seed: int, t_s: float) -> float:
    """mm/h at t, including events that started the day before."""
    day = local_day(t_s)
    hour = (t_s + TZ_OFFSET_S) % DAY_S / 3600
    rate = 0.0
    for d, h in ((day, hour), (day - 1, hour + 24)):
        for start, dur, mmh in day_params(seed, d).rain:
            if start <= h < start + dur:
                # Showers rise and fall within the event.
                rate += mmh * 2 * math.sin(math.pi * (h - start) / dur) ** 2
    return rate


def hours_since_rain(seed: int, t_s: float, limit_h: int = 72) -> float:
    """Hours since the last rain ended (0 while raining), capped at limit_h."""
    if rain_rate(seed, t_s) > 0:
        return 0.0
    return min([float(limit_h), *(ago for ago, _ in rain_history(seed, t_s, days=limit_h // 24 + 1))])


def rain_history(seed: int, t_s: float, days: int = 12) -> list[tuple[float, float]]:
    """(hours ago the event ended, mm) for events that ended before t within `days`."""
    day = local_day(t_s)
    hour = (t_s + TZ_OFFSET_S) % DAY_S / 3600
    out = []
    for back in range(days):
        for start, dur, mmh in day_params(seed, day - back).rain:
            now_h = hour + 24 * back
            if now_h >= start + dur:
                out.append((now_h - start - dur, mmh * dur))
    return out


@dataclass(frozen=True, slots=True)
class Weather:
    air_temp_c: float
    rh_pct: float
    rain_mmh: float
    solar_wm2: float
    wind_ms: float
    gust_ms: float
    dry_hours: float
    cloud: float


def weather(seed: int, t_s: float, cold_pool_c: float = 0.0) -> Weather:
    """The site's weather at t (UTC seconds); cold_pool_c deepens frost in low-lying plots on clear nights."""
    day = local_day(t_s)
    hour = (t_s + TZ_OFFSET_S) % DAY_S / 3600
    p = day_params(seed, day)
    # Blend the daily anomaly into the next day's across the evening, so there is no step at midnight.
    nxt = day_params(seed, day + 1)
    w = max(0.0, (hour - 18) / 6)
    anomaly = p.anomaly_c * (1 - w) + nxt.anomaly_c * w
    doy = day_of_year(day) + hour / 24
    rate = rain_rate(seed, t_s)
    cloud = max(p.cloud, 0.9 if rate > 0 else 0)
    dtr = 9.5 * (1 - 0.65 * cloud)
    diurnal = _diurnal(hour)
    temp = seasonal_mean_c(doy) + anomaly + dtr / 2 * diurnal
    # Frost nights: cooling from dusk that deepens until dawn (the night belongs to the next day's params).
    night_of = nxt if hour >= 18 else p
    if night_of.frost_c and (hour >= 18 or hour < 8):
        h = hour - 18 if hour >= 18 else hour + 6  # hours since 18:00
        shape = math.sin(math.pi * min(h, 12) / 13) if h < 12 else max(0.0, 1 - (h - 11.5) / 2)
        temp += (night_of.frost_c + cold_pool_c) * shape
    if p.heat_c and 9 <= hour <= 21:
        temp += p.heat_c * math.sin(math.pi * (hour - 9) / 12)
    # Relative humidity: high at dawn, low in the afternoon, saturated in rain and after it.
    rh = 78 - 16 * diurnal * (1 - 0.5 * cloud) + 10 * cloud - (0.6 * p.heat_c if p.heat_c else 0)
    dry = hours_since_rain(seed, t_s)
    if rate > 0:
        rh = 97
    elif dry < 6:
        rh = max(rh, 97 - 3 * dry)
    elev = _sun_elevation(t_s)
    solar = max(0.0, 1050 * math.sin(elev) ** 1.15) * (1 - 0.75 * cloud) if elev > 0 else 0.0
    wind = p.wind_ms * (0.6 + 0.5 * max(0.0, -math.cos(2 * math.pi * (hour - 3) / 24)))
    return Weather(temp, min(100.0, max(20.0, rh)), rate, solar, wind, wind * 1.9, dry, cloud)


def _sun_elevation(t_s: float) -> float:
    doy = (t_s / DAY_S) % 365.25
    decl = math.radians(-23.44) * math.cos(2 * math.pi * (doy + 10) / 365.25)
    solar_time = ((t_s + 106.0 / 15 * 3600) % DAY_S) / 3600  # local mean solar time at 106 E
    hour_angle = math.radians(15 * (solar_time - 12))
    return math.asin(math.sin(LAT) * math.sin(decl) + math.cos(LAT) * math.cos(decl) * math.cos(hour_angle))
