"""A plot's red/yellow/green risk code from its latest readings.

Simple threshold checks until the alarm service (analytics/) lands; `plot_risk` is the one function it will
replace with the state of the plot's active alarms. Numbers from DESIGN.md's kiwifruit rule pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchard.indicators import wet_bulb_c
from orchard.site import Plot

LEVELS = ("red", "yellow", "green", "unknown")  # worst first
COLOURS = {"red": "#d62728", "yellow": "#f2b705", "green": "#2ca02c", "unknown": "#7f7f7f"}


@dataclass(frozen=True, slots=True)
class Risk:
    level: str  # red | yellow | green | unknown (no fresh data)
    reasons: tuple[tuple[str, dict[str, float]], ...] = field(default=())  # (i18n key, its parameters)


def plot_risk(plot: Plot, readings: Mapping[str, float], fresh: bool) -> Risk:
    """Worst of the checks on the plot's newest readings; `fresh` False means nothing recent to judge by."""
    if not fresh or not readings:
        return Risk("unknown", (("risk.no_data", {}),))
    red: list[tuple[str, dict[str, float]]] = []
    yellow: list[tuple[str, dict[str, float]]] = []
    t, rh = readings.get("air_temp_c"), readings.get("rh_pct")
    if t is not None:
        if t <= -1.5:
            red.append(("risk.frost", {"t": t}))
        elif t >= 35:
            red.append(("risk.heat", {"t": t}))
        elif t >= 32:
            yellow.append(("risk.warm", {"t": t}))
        if t > -1.5 and rh is not None and (wb := float(wet_bulb_c(t, rh))) <= 1.0:
            yellow.append(("risk.wet_bulb", {"wb": wb}))
        if rh is not None and 10 <= t <= 20 and rh > 81:
            yellow.append(("risk.psa_weather", {"t": t, "rh": rh}))
    vwc = readings.get("soil_vwc_pct")
    if vwc is not None:
        span = plot.field_capacity_pct - plot.wilting_point_pct
        available = (vwc - plot.wilting_point_pct) / span * 100
        if available < 50:
            red.append(("risk.dry", {"aw": available}))
        elif available < 70:
            yellow.append(("risk.drying", {"aw": available}))
        elif vwc > plot.field_capacity_pct + 5:
            yellow.append(("risk.waterlogged", {"vwc": vwc}))
    gust = readings.get("wind_gust_ms")
    if gust is not None:
        if gust >= 20:
            red.append(("risk.gale", {"g": gust}))
        elif gust >= 14:
            yellow.append(("risk.windy", {"g": gust}))
    if red:
        return Risk("red", tuple(red + yellow))
    if yellow:
        return Risk("yellow", tuple(yellow))
    return Risk("green")
