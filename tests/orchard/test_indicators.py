"""Derived indicators against published values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchard import indicators


@pytest.mark.parametrize(("t", "rh", "dew"), [
    (20.0, 50.0, 9.3),    # textbook value
    (25.0, 100.0, 25.0),  # saturated air: dew point is the temperature
    (0.0, 80.0, -3.0),
    (30.0, 30.0, 10.5),
])
def test_dew_point(t: float, rh: float, dew: float) -> None:
    assert indicators.dew_point_c(t, rh) == pytest.approx(dew, abs=0.15)


@pytest.mark.parametrize(("t", "rh", "wb"), [
    (20.0, 50.0, 13.7),  # Stull (2011), the paper's own check value
    (0.0, 100.0, 0.0),
    (5.0, 60.0, 1.6),    # a clear spring evening: the air is 5 C but wet-bulb is close to the frost line
])
def test_wet_bulb_stull(t: float, rh: float, wb: float) -> None:
    assert indicators.wet_bulb_c(t, rh) == pytest.approx(wb, abs=0.35)


@pytest.mark.parametrize(("t", "rh", "vpd"), [(25.0, 50.0, 1.584), (25.0, 100.0, 0.0), (10.0, 70.0, 0.368)])
def test_vpd(t: float, rh: float, vpd: float) -> None:
    assert indicators.vpd_kpa(t, rh) == pytest.approx(vpd, abs=0.005)


def test_arrays_and_nan() -> None:
    out = indicators.dew_point_c(np.array([20.0, np.nan]), np.array([50.0, 50.0]))
    assert out[0] == pytest.approx(9.3, abs=0.15) and np.isnan(out[1])


def test_chill_hours_counts_hours_in_band() -> None:
    temps = pd.Series([-1.0, 0.0, 3.5, 7.2, 7.3, np.nan, 5.0])
    assert indicators.chill_hours(temps) == 4


def test_growing_degree_days() -> None:
    gdd = indicators.growing_degree_days(pd.Series([8.0, 12.0, 2.0]), pd.Series([20.0, 30.0, 9.0]))
    assert list(gdd) == [4.0, 11.0, 0.0]
