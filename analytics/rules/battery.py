"""Low battery: the median of the last readings under the warning or the major voltage (or, for a device that
reports its charge in percent only, under the warning or major charge)."""

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
    # A device that reports its charge instead of its voltage (Milesight, SenseCAP: battery_pct by its profile).
    warning_pct: float = Field(20, description="Remaining charge for a warning, for devices that report percent.")
    major_pct: float = Field(10, description="Remaining charge for a major alarm.")
    clear_pct: float = Field(30, description="Clear at or above this charge.")


@register
class LowBattery(DeviceRule):
    type = "low_battery"
    Config = BatteryConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: BatteryConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        b = data.raw.of("battery_v")
        if b.empty:
            pct = data.raw.of("battery_pct")
            if pct.empty:
                return [self.hold(src)]
            level = float(pct["value"].tail(5).median())
            return [self.graded(site, src, level, warning=cfg.warning_pct, major=cfg.major_pct, clear=cfg.clear_pct,
                                rising=False, threshold_key="threshold_pct", plot=data.device.plot,
                                device=data.device.id, pct=level, text="pct")]
        volts = float(b["value"].tail(5).median())  # one low reading in the cold of dawn is not a dead battery
        return [self.graded(site, src, volts, warning=cfg.warning_v, major=cfg.major_v, clear=cfg.clear_v,
                            rising=False, threshold_key="threshold_v", plot=data.device.plot, device=data.device.id,
                            volts=volts)]
