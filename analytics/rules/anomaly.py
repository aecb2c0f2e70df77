"""Statistical anomaly: a plot's latest hour unlike its own daily cycle. Each hour's residual is its mean minus
the median of the same hour on the previous days; the latest residual's robust z-score (against the median and
MAD of the earlier residuals) flags readings no weather explains as easily as a failing or displaced sensor.
Info level by default: shown on the dashboard, not sent."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydantic import Field

from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict, plot_source
from orchard.site import Site

NS = 1_000_000_000
HOUR = 3600 * NS


def robust_z(times: np.ndarray, values: np.ndarray) -> float | None:
    """The latest hour's robust z-score against the daily cycle; None with under two days of history."""
    hour_of_day = (times // HOUR) % 24
    residuals = []
    for i in range(len(values)):
        earlier = values[:i][hour_of_day[:i] == hour_of_day[i]]
        if len(earlier) >= 2:
            residuals.append(values[i] - float(np.median(earlier)))
    if len(residuals) < 12:
        return None
    history, latest = np.array(residuals[:-1]), residuals[-1]
    mad = float(np.median(np.abs(history - np.median(history)))) * 1.4826
    return (latest - float(np.median(history))) / max(mad, 0.1)


class AnomalyConfig(RuleConfig):
    fields: tuple[str, ...] = Field(("air_temp_c", "rh_pct"), description="Hourly plot means checked.")
    z: float = Field(5.0, description="Robust z-score from which the latest hour is an anomaly.")
    clear_z: float = Field(3.0, description="Clear below this.")
    severity: str = Field("info", description="Severity of the alarm (info: dashboard only).")


@register
class Anomaly(PlotRule):
    type = "anomaly"
    Config = AnomalyConfig

    def evaluate(self, site: Site, data: PlotData, cfg: AnomalyConfig, now_ns: int) -> Iterable[Verdict]:
        src = plot_source(data.plot)
        worst: tuple[float, str] | None = None
        for field in cfg.fields:
            rows = data.hourly.of(field)
            z = robust_z(rows["time_ns"].to_numpy(), rows["mean"].to_numpy(dtype=float)) if len(rows) else None
            if z is not None and (worst is None or abs(z) > abs(worst[0])):
                worst = (z, field)
        if worst is None:
            return [self.hold(src)]
        z, field = worst
        if abs(z) >= cfg.z:
            return [self.signal(site, src, cfg.severity, plot=data.plot.id, reading=field, z=round(z, 1))]
        return [self.clear(src) if abs(z) < cfg.clear_z else self.hold(src)]
