"""Intrusion: at night, something the size of a person or a vehicle moved in a watched zone of a camera
(village security, 社会治安). The cameras service detects it; the alarm stays up for a while after the last
sighting, so one crossing is one alarm, and carries the snapshot that saw it."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import CameraData, CameraRule, RuleConfig, Verdict, camera_source
from analytics.rules.cameras import local_time
from orchard.site import Site

NS = 1_000_000_000


class IntrusionConfig(RuleConfig):
    hold_min: float = Field(15, gt=0, le=30, description="The alarm clears this long after the last sighting.")
    severity: str = Field("major", pattern="^(warning|major|critical)$", description="Severity of an intrusion.")


@register
class Intrusion(CameraRule):
    type = "intrusion"
    Config = IntrusionConfig

    def evaluate(self, site: Site, data: CameraData, cfg: IntrusionConfig, now_ns: int) -> Iterable[Verdict]:
        cam = data.camera
        src = camera_source(cam.id)
        seen = [s for s in data.statuses if s.intrusion and now_ns - s.time_ns <= cfg.hold_min * 60 * NS]
        if not seen:
            return [self.clear(src)]
        first, last = seen[0], seen[-1]
        return [self.signal(site, src, cfg.severity, plot=cam.plot, device=cam.id, camera=cam.label(),
                            zone=first.intrusion, at=local_time(site, first.time_ns), sightings=len(seen),
                            snapshot_ns=first.snapshot_ns or first.time_ns, last_at=local_time(site, last.time_ns))]
