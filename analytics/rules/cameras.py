"""Camera health, as the cameras service reports it with every snapshot (video/health.py judges the picture):
offline (unreachable, or no report for a few intervals: the service or the camera is gone), dark or covered,
frozen, a low frame rate (an rtsp camera's stream), blurred. Each is its own alarm, to the adviser first; an
offline camera mutes its other alarms."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import CameraData, CameraRule, RuleConfig, Verdict, camera_source
from orchard.site import Site

NS = 1_000_000_000


class CameraOfflineConfig(RuleConfig):
    missed_intervals: int = Field(3, ge=1, description="Offline after this many snapshot intervals without a report.")
    min_silence_s: float = Field(120, ge=0, description="...and at least this long (short intervals, busy service).")


def local_time(site: Site, time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / NS, site.tz).strftime("%m-%d %H:%M")


@register
class CameraOffline(CameraRule):
    type = "camera_offline"
    Config = CameraOfflineConfig

    def evaluate(self, site: Site, data: CameraData, cfg: CameraOfflineConfig, now_ns: int) -> Iterable[Verdict]:
        cam, last = data.camera, data.latest
        src = camera_source(cam.id)
        limit = cam.silent_after_s(cfg.missed_intervals, cfg.min_silence_s) * NS
        if last is None or now_ns - last.time_ns > limit:
            minutes = 30 if last is None else round((now_ns - last.time_ns) / NS / 60)  # 30: all the window holds
            return [self.signal(site, src, "warning", text="silent", plot=cam.plot, device=cam.id,
                                camera=cam.label(), minutes=minutes)]
        if last.health == "unreachable":
            return [self.signal(site, src, "warning", plot=cam.plot, device=cam.id, camera=cam.label(),
                                since=local_time(site, last.since_ns), error=last.error[:120])]
        return [self.clear(src)]


class _PictureRule(CameraRule):
    """Fires while the camera's latest report says it has this problem."""

    health = ""

    def evaluate(self, site: Site, data: CameraData, cfg: RuleConfig, now_ns: int) -> Iterable[Verdict]:
        cam, last = data.camera, data.latest
        src = camera_source(cam.id)
        if last is None or last.health == "unreachable":
            return [self.hold(src)]  # nothing new to judge the picture by
        if last.health != self.health:
            return [self.clear(src)]
        return [self.signal(site, src, "warning", plot=cam.plot, device=cam.id, camera=cam.label(),
                            since=local_time(site, last.since_ns), brightness=last.brightness or 0.0,
                            sharpness=last.sharpness or 0.0, error=last.error[:120])]


@register
class CameraDark(_PictureRule):
    type = "camera_dark"
    health = "dark"


@register
class CameraFrozen(_PictureRule):
    type = "camera_frozen"
    health = "frozen"


@register
class CameraLowFps(_PictureRule):
    """An rtsp camera's stream sends too few frames (video/recorder.py measures it); the reason names the rates."""

    type = "camera_low_fps"
    health = "low_fps"


@register
class CameraBlurred(_PictureRule):
    type = "camera_blurred"
    health = "blurred"
