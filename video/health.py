"""A camera's health from its recent snapshots: unreachable, dark (or covered), frozen, a low frame rate (said by
its stream, kind rtsp), blurred, or ok.

One bad snapshot says little (a cloud, a bird on the lens, a dropped packet), so each problem must repeat before
the camera is said to have it; a single good snapshot clears it. The worst problem wins (orchard.models order).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchard.models import CAMERA_HEALTH
from orchard.settings import CamerasSettings
from video.analyse import Picture


@dataclass(frozen=True, slots=True)
class Health:
    """Stage 3: what the camera's picture says about the camera."""

    state: str  # one of CAMERA_HEALTH
    since_ns: int
    error: str = ""


class HealthTracker:
    def __init__(self, cfg: CamerasSettings) -> None:
        self.cfg = cfg
        self.failures = self.same = self.dark = self.blurred = 0
        self.last: Picture | None = None
        self.state, self.since_ns, self.error = "ok", 0, ""

    def _set(self, state: str, now_ns: int, error: str = "") -> Health:
        if state != self.state or self.since_ns == 0:
            self.state, self.since_ns = state, now_ns
        self.error = error
        return Health(self.state, self.since_ns, error)

    def failed(self, now_ns: int, error: str) -> Health:
        self.failures += 1
        if self.failures >= self.cfg.unreachable_after:
            return self._set("unreachable", now_ns, error)
        return Health(self.state, self.since_ns or now_ns, error)  # not yet: keep what it was

    def observed(self, now_ns: int, pic: Picture, stream_fault: str = "") -> Health:
        """A picture arrived; `stream_fault` is what its stream says is wrong with it (a low frame rate)."""
        cfg = self.cfg
        self.failures = 0
        self.same = self.same + 1 if self.last is not None and pic.same_as(self.last) else 0
        self.last = pic
        self.dark = self.dark + 1 if pic.brightness < cfg.dark_below else 0
        self.blurred = self.blurred + 1 if pic.sharpness < cfg.blurred_below else 0
        found = {
            "dark": self.dark >= cfg.bad_after,
            "frozen": self.same + 1 >= cfg.frozen_after,  # n identical pictures are n-1 repeats
            "low_fps": bool(stream_fault),
            "blurred": self.blurred >= cfg.bad_after,
        }
        state = next((h for h in CAMERA_HEALTH if found.get(h)), "ok")
        return self._set(state, now_ns, stream_fault if state == "low_fps" else "")
