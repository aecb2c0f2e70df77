"""Device offline: no reading for 3 reading intervals, or the device's last will says so."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000


class OfflineConfig(RuleConfig):
    missed_intervals: int = Field(3, ge=1, description="Offline after this many missed reading intervals.")


@register
class Offline(DeviceRule):
    type = "device_offline"
    Config = OfflineConfig

    def evaluate(self, site: Site, data: DeviceData, cfg: OfflineConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        d = data.device
        src = device_source(d.id)
        limit = cfg.missed_intervals * d.interval_s * NS
        silent = data.last_seen_ns is None or now_ns - data.last_seen_ns > limit
        if silent or data.online is False:
            if data.last_seen_ns is None:
                return [self.signal(site, src, "warning", text="never", plot=d.plot, device=d.id, kind=d.kind)]
            return [self.signal(site, src, "warning", plot=d.plot, device=d.id, kind=d.kind,
                                minutes=round((now_ns - data.last_seen_ns) / NS / 60), last_will=data.online is False)]
        return [self.clear(src)]
