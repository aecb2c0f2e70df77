"""A synthetic orchard camera for the demo and the tests: a kiwifruit pergola seen from a post.

By day the sky, the canopy of the T-bar pergola and the path under it are lit by the sun's elevation, and the
canopy sways with the wind; at night the camera switches to its infra-red look (grey, noisy, lit from the
camera). Now and then, at night, a person or a vehicle crosses the path: the same seed gives the same nights.
Everything depends only on the seed and the time, so a test can ask for any moment.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from orchard.indicators import sun_elevation_deg
from orchard.site import CameraConfig
from video.sources import Frame

CANOPY = (0.08, 0.52)  # the canopy band, as fractions of the height (the demo's masks cover it)
PATH_TOP = 0.58  # the path under the pergola starts here (the demo's intrusion zone)


@dataclass(frozen=True, slots=True)
class Intruder:
    kind: str  # person | vehicle
    progress: float  # 0..1 across the frame


class SyntheticOrchard:
    def __init__(self, seed: int = 1, width: int = 1280, height: int = 720, lat: float = 31.76,
                 lon: float = 105.97, tz: str = "Asia/Shanghai", intruder_nights: float = 0.3) -> None:
        self.seed, self.w, self.h, self.lat, self.lon = seed, width, height, lat, lon
        self.tz = ZoneInfo(tz)
        self.intruder_nights = intruder_nights
        rng = np.random.default_rng(seed)
        self._scene = self._draw_scene(rng)
        self._canopy = self._draw_canopy(rng)
        self._noise = rng.normal(0, 1, (height, width)).astype(np.float32)

    # -- the still parts, drawn once ---------------------------------------------------------------------------
    def _draw_scene(self, rng: np.random.Generator) -> np.ndarray:
        w, h = self.w, self.h
        img = np.zeros((h, w, 3), np.uint8)
        for y in range(h):  # sky fading into hillside, then soil
            f = y / h
            img[y] = (215 - 60 * f, 190 - 50 * f, 150 - 60 * f) if f < PATH_TOP else (70, 95 + 20 * f, 120)
        path = np.array([[w * 0.38, h * PATH_TOP], [w * 0.62, h * PATH_TOP], [w * 0.85, h], [w * 0.15, h]], np.int32)
        cv2.fillPoly(img, [path], (120, 150, 175))
        for x in np.linspace(0.05, 0.95, 7):  # pergola posts
            cv2.rectangle(img, (int(w * x) - 6, int(h * 0.3)), (int(w * x) + 6, int(h * 0.95)), (90, 100, 110), -1)
        grit = rng.integers(-12, 12, (h, w, 1), dtype=np.int16)
        return np.clip(img.astype(np.int16) + grit, 0, 255).astype(np.uint8)

    def _draw_canopy(self, rng: np.random.Generator) -> np.ndarray:
        """Leaves on the pergola wires: the band the wind moves (BGRA; alpha marks the leaves)."""
        w, h = self.w, self.h
        top, bottom = int(h * CANOPY[0]), int(h * CANOPY[1])
        layer = np.zeros((bottom - top, w, 4), np.uint8)
        for _ in range(int(w * (bottom - top) / 900)):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, bottom - top))
            r = int(rng.integers(max(4, w // 160), max(6, w // 60)))
            green = (int(rng.integers(30, 70)), int(rng.integers(110, 170)), int(rng.integers(50, 90)), 255)
            cv2.circle(layer, (x, y), r, green, -1)
        for _ in range(int(w / 25)):  # hanging fruit
            x, y = int(rng.integers(0, w)), int(rng.integers((bottom - top) // 2, bottom - top))
            cv2.ellipse(layer, (x, y), (max(3, w // 220), max(4, w // 170)), 0, 0, 360, (40, 75, 110, 255), -1)
        return layer

    # -- what the camera sees at a moment ----------------------------------------------------------------------
    def intruder_at(self, when: datetime) -> Intruder | None:
        """The night's visitor, if this night has one and it is crossing now (about 80 s on the path)."""
        local = when.astimezone(self.tz)
        night = (local.date().toordinal() - (1 if local.hour < 12 else 0))
        digest = hashlib.sha256(f"{self.seed}:{night}".encode()).digest()
        if digest[0] / 255 >= self.intruder_nights:
            return None
        start_min = 22 * 60 + digest[1] % 360  # between 22:00 and 04:00
        minute = local.hour * 60 + local.minute + local.second / 60
        minute += 24 * 60 if local.hour < 12 else 0
        progress = (minute - start_min) / (80 / 60)
        if not 0 <= progress <= 1:
            return None
        return Intruder("vehicle" if digest[2] % 3 == 0 else "person", progress)

    def render(self, when: datetime, intruder: Intruder | None = None, wind: float = 0.5) -> np.ndarray:
        """The frame at `when`; `intruder` puts someone on the path (else the night's own schedule decides)."""
        elevation = sun_elevation_deg(self.lat, self.lon, when)
        t = when.timestamp()
        img = self._scene.copy()
        top = int(self.h * CANOPY[0])
        shift = round(wind * self.w / 200 * math.sin(t * 0.9) + wind * self.w / 400 * math.sin(t * 2.3))
        canopy = np.roll(self._canopy, shift, axis=1)
        leaves = canopy[:, :, 3:] > 0
        band = img[top:top + canopy.shape[0]]
        np.copyto(band, canopy[:, :, :3], where=leaves)
        someone = intruder if intruder is not None else self.intruder_at(when)
        if someone is not None:
            self._draw_intruder(img, someone)
        rng = np.random.default_rng(int(t * 1000) % 2**32)
        noise = np.roll(self._noise, int(rng.integers(0, self.w)), axis=1)
        if elevation > -3:  # day (and twilight): sunlight
            light = 0.25 + 0.75 * min(1.0, max(0.0, (elevation + 3) / 30))
            out = img.astype(np.float32) * light + noise[:, :, None] * 3
        else:  # infra-red: grey, brightest in the middle where the illuminator points
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
            out = (grey * 0.55 * self._vignette() + noise * 7)[:, :, None].repeat(3, axis=2)
        return np.clip(out, 0, 255).astype(np.uint8)

    def _vignette(self) -> np.ndarray:
        if not hasattr(self, "_vig"):
            ys, xs = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
            d = np.hypot((xs - self.w / 2) / self.w, (ys - self.h * 0.7) / self.h)
            self._vig = np.clip(1.3 - 1.4 * d, 0.35, 1.2)
        return self._vig

    def _draw_intruder(self, img: np.ndarray, who: Intruder) -> None:
        w, h = self.w, self.h
        x = int(w * (0.1 + 0.8 * who.progress))
        foot = int(h * 0.86)
        if who.kind == "person":
            body_h = int(h * 0.22)
            cv2.rectangle(img, (x - w // 90, foot - body_h), (x + w // 90, foot), (235, 235, 240), -1)
            cv2.circle(img, (x, foot - body_h - h // 50), h // 45, (225, 230, 240), -1)
        else:
            cv2.rectangle(img, (x - w // 14, foot - h // 7), (x + w // 14, foot - h // 40), (245, 245, 250), -1)
            for dx in (-w // 20, w // 20):
                cv2.circle(img, (x + dx, foot - h // 40), h // 30, (20, 20, 20), -1)


class SyntheticSource:
    """A camera source that renders the synthetic orchard at the current time."""

    def __init__(self, orchard: SyntheticOrchard) -> None:
        self.orchard = orchard

    @classmethod
    def from_config(cls, cam: CameraConfig) -> SyntheticSource:
        seed = cam.url.removeprefix("synthetic://") or "1"
        return cls(SyntheticOrchard(int(seed) if seed.isdigit() else sum(seed.encode()), cam.width, cam.height))

    def snapshot(self) -> Frame:
        now = time.time_ns()
        return Frame(now, image=self.orchard.render(datetime.fromtimestamp(now / 1e9, UTC)))

    def close(self) -> None:
        pass
