"""The interim red/yellow/green code, table-driven."""

from __future__ import annotations

import pytest

from dashboard.risk import plot_risk
from orchard.settings import Settings
from orchard.site import site_for

PLOT = site_for(Settings()).plots[0]  # field capacity 34.6 %, wilting point 12.5 %
MOIST = 30.0  # 80 % of available water


@pytest.mark.parametrize(("readings", "level", "reasons"), [
    ({"air_temp_c": 12.0, "rh_pct": 60.0, "soil_vwc_pct": MOIST}, "green", []),
    ({"air_temp_c": -2.0, "rh_pct": 90.0}, "red", ["risk.frost"]),
    ({"air_temp_c": 2.0, "rh_pct": 50.0}, "yellow", ["risk.wet_bulb"]),
    ({"air_temp_c": 36.0, "rh_pct": 30.0}, "red", ["risk.heat"]),
    ({"air_temp_c": 33.0, "rh_pct": 30.0}, "yellow", ["risk.warm"]),
    ({"air_temp_c": 15.0, "rh_pct": 92.0}, "yellow", ["risk.psa_weather"]),
    ({"soil_vwc_pct": 20.0}, "red", ["risk.dry"]),
    ({"soil_vwc_pct": 26.0}, "yellow", ["risk.drying"]),
    ({"soil_vwc_pct": 41.0}, "yellow", ["risk.waterlogged"]),
    ({"wind_gust_ms": 22.0}, "red", ["risk.gale"]),
    ({"wind_gust_ms": 15.0, "soil_vwc_pct": 20.0}, "red", ["risk.dry", "risk.windy"]),
    ({}, "unknown", ["risk.no_data"]),
])
def test_plot_risk(readings: dict[str, float], level: str, reasons: list[str]) -> None:
    r = plot_risk(PLOT, readings, fresh=True)
    assert (r.level, [k for k, _ in r.reasons]) == (level, reasons)


def test_stale_data_is_unknown_not_green() -> None:
    assert plot_risk(PLOT, {"air_temp_c": 12.0}, fresh=False).level == "unknown"
