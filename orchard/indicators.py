"""Derived agro-meteorological indicators, computed once here for the dashboard and the analytics rules.

All functions take scalars or numpy/pandas arrays (temperatures in C, relative humidity in %) and return the
same shape; NaN in, NaN out.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd

A = TypeVar("A", float, np.ndarray, pd.Series)

CHILL_LOW_C, CHILL_HIGH_C = 0.0, 7.2  # the classic 0-7.2 C chill-hour model
GDD_BASE_C = 10.0  # kiwifruit is usually counted from a 10 C base (configurable per rule)


def saturation_vapour_pressure_kpa(t_c: A) -> A:
    """Tetens (FAO-56 eq. 11)."""
    return 0.6108 * np.exp(17.27 * t_c / (t_c + 237.3))


def dew_point_c(t_c: A, rh_pct: A) -> A:
    """Magnus formula with Sonntag's constants; within 0.35 C from -45 to 60 C."""
    a, b = 17.62, 243.12
    rh = np.clip(rh_pct, 0.1, 100.0)
    gamma = np.log(rh / 100.0) + a * t_c / (b + t_c)
    return b * gamma / (a - gamma)


def vpd_kpa(t_c: A, rh_pct: A) -> A:
    """Vapour pressure deficit: how hard the air pulls water from leaves."""
    return saturation_vapour_pressure_kpa(t_c) * (1.0 - np.clip(rh_pct, 0.0, 100.0) / 100.0)


def wet_bulb_c(t_c: A, rh_pct: A) -> A:
    """Stull (2011) empirical wet-bulb temperature at sea-level pressure; valid for RH 5-99% and -20..50 C."""
    rh = np.clip(rh_pct, 5.0, 99.0)
    return (
        t_c * np.arctan(0.151977 * np.sqrt(rh + 8.313659))
        + np.arctan(t_c + rh)
        - np.arctan(rh - 1.676331)
        + 0.00391838 * rh**1.5 * np.arctan(0.023101 * rh)
        - 4.686035
    )


def chill_hours(hourly_t_c: pd.Series, low: float = CHILL_LOW_C, high: float = CHILL_HIGH_C) -> float:
    """Hours with a mean temperature within [low, high]; the series is hourly means (NaN hours do not count)."""
    t = hourly_t_c.dropna()
    return float(((t >= low) & (t <= high)).sum())


def growing_degree_days(daily_min_c: pd.Series, daily_max_c: pd.Series, base: float = GDD_BASE_C) -> pd.Series:
    """Degree-days per day, (Tmax + Tmin) / 2 - base, floored at 0; cumulative sums give the season's total."""
    return ((daily_min_c + daily_max_c) / 2 - base).clip(lower=0)


def _solar(g: float) -> tuple[float, float]:
    """(declination in radians, equation of time in minutes) at fractional year g (NOAA's series)."""
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    eq_time_min = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                            - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    return decl, eq_time_min


def sunrise_utc(lat: float, lon: float, day: date) -> datetime:
    """Sunrise (upper limb, standard refraction) by NOAA's approximation; within a couple of minutes."""
    decl, eq_time_min = _solar(2 * math.pi / 365 * (day.timetuple().tm_yday - 1))
    phi = math.radians(lat)
    cos_ha = math.cos(math.radians(90.833)) / (math.cos(phi) * math.cos(decl)) - math.tan(phi) * math.tan(decl)
    ha = math.degrees(math.acos(max(-1.0, min(1.0, cos_ha))))
    minutes = 720 - 4 * (lon + ha) - eq_time_min
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)


def sun_elevation_deg(lat: float, lon: float, when: datetime) -> float:
    """The sun's elevation above the horizon (NOAA's approximation, no refraction); below zero it is night."""
    t = when.astimezone(UTC)
    decl, eq_time_min = _solar(2 * math.pi / 365 * (t.timetuple().tm_yday - 1 + (t.hour - 12) / 24))
    solar_min = t.hour * 60 + t.minute + t.second / 60 + eq_time_min + 4 * lon
    ha = math.radians(solar_min / 4 - 180)
    phi = math.radians(lat)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))
