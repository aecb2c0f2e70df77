"""Low battery: the median of the last readings under the warning or the major voltage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000


class BatteryConfig(RuleConfig):
    warning_v: float = Field(3.3, description="Battery voltage for a warning (a Li-ion cell near empty).")
    major_v: float = Field(3.1, description="Battery voltage for a major alarm (the device will stop soon).")
    clear_v: float = Field(3.45, description="Clear at or above this (charged or replaced).")


@register
class LowBattery(DeviceRule):
    type = "low_battery"
    Config = BatteryConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: BatteryConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        b = data.raw.of("battery_v")
        if b.empty:
            return [self.hold(src)]
        volts = float(b["value"].tail(5).median())  # one low reading in the cold of dawn is not a dead battery
        return [self.graded(site, src, volts, warning=cfg.warning_v, major=cfg.major_v, clear=cfg.clear_v,
                            rising=False, threshold_key="threshold_v", plot=data.device.plot, device=data.device.id,
                            volts=volts)]
