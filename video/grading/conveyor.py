"""A conveyor simulator for the demo, the tests and the benchmark: top-view frames of kiwifruit on a roller line,
with the truth about every fruit.

Fruit lie across the rollers (long axis near-vertical in the picture) in `lanes` lanes and roll about their long
axis as the belt advances, so the equatorial diameter facing the camera swings between the fruit's minimum and
maximum from frame to frame: that is how a single overhead camera sees both. Each fruit is an ellipsoid of known
length and diameters, brown and fuzzy, with defects of known kind and size on its surface (seen only when they
face the camera), sometimes misshapen; neighbours sometimes touch. Lighting drifts, motion blur is optional, the
belt colour is a parameter, and an ArUco marker of known size sits on the rail above the belt.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

MARKER_ID = 0


@dataclass(frozen=True, slots=True)
class Defect:
    kind: str  # spot | rot | scar | sunburn (misshapen is a property of the fruit's shape)
    area_mm2: float
    along: float  # position along the long axis, -1..1
    angle: float  # position around the long axis, radians (faces the camera when the roll brings it up)


@dataclass(frozen=True, slots=True)
class TrueFruit:
    id: int
    lane: int
    x0_mm: float  # position along the belt at frame 0 (negative: still upstream)
    length_mm: float
    max_diameter_mm: float
    min_diameter_mm: float
    weight_g: float
    tilt_deg: float  # long axis against the picture's vertical
    roll0: float  # roll angle at x = 0
    defects: tuple[Defect, ...] = ()
    misshapen: bool = False
    colour: tuple[int, int, int] = (45, 85, 125)  # BGR skin colour

    @property
    def ratio(self) -> float:
        return self.min_diameter_mm / self.max_diameter_mm

    def defect_areas(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for d in self.defects:
            out[d.kind] = out.get(d.kind, 0.0) + d.area_mm2
        if self.misshapen:
            out["misshapen"] = 1.0
        return out


@dataclass(frozen=True, slots=True)
class Seen:
    """Where a fruit is in one frame (the truth for matching the grader's tracks)."""

    fruit: TrueFruit
    x_px: float
    y_px: float
    whole: bool  # entirely inside the frame


@dataclass
class Conveyor:
    seed: int = 1
    width: int = 1280
    height: int = 720
    lanes: int = 5
    px_per_mm: float = 1.6
    advance_mm: float = 55.0  # belt travel between frames
    belt_bgr: tuple[int, int, int] = (60, 95, 50)  # dark green
    roi_top: float = 0.12  # the rail with the marker above this
    marker_mm: float = 30.0
    marker: bool = True
    drift: bool = True  # lighting drifts over time and across the frame
    blur_px: int = 0  # motion blur along the belt
    defect_rate: float = 0.3
    misshapen_rate: float = 0.04
    touch_rate: float = 0.12
    g_per_cm3: float = 1.05  # density times the shape coefficient of the true fruit
    max_fruit: int | None = None  # feed this many, then the belt runs empty (a lot)
    mean_weight_g: float = 92.0  # the grower's fruit: a plot's average size
    forget: bool = False  # an endless belt: drop the fruit that have left (the truth is not kept)
    fruit: list[TrueFruit] = field(default_factory=list)
    fed: int = 0  # fruit put on the belt so far

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._next_x = [-self.rng.uniform(0, 120) for _ in range(self.lanes)]
        self._belt = self._draw_belt()
        self._noise = self.rng.normal(0, 1, (256, 256)).astype(np.float32)

    # -- geometry -----------------------------------------------------------------------------------------------
    @property
    def belt_top_px(self) -> int:
        return int(self.height * self.roi_top)

    def lane_y_px(self, lane: int) -> float:
        lane_h = (self.height - self.belt_top_px) / self.lanes
        return self.belt_top_px + (lane + 0.5) * lane_h

    def x_px(self, f: TrueFruit, n: int) -> float:
        return (f.x0_mm + n * self.advance_mm) * self.px_per_mm

    # -- the fruit ----------------------------------------------------------------------------------------------
    def _new_fruit(self, lane: int) -> TrueFruit:
        r = self.rng
        weight_target = float(np.clip(r.normal(self.mean_weight_g, 16), 45, 150))
        ratio = float(np.clip(r.normal(0.86, 0.06), 0.62, 0.99))
        elong = float(np.clip(r.normal(1.28, 0.06), 1.12, 1.45))  # length / max diameter
        # weight = k * pi/6 * L * D * (ratio D) = k * pi/6 * elong * ratio * D^3
        d = (weight_target * 1000 / (self.g_per_cm3 * math.pi / 6 * elong * ratio)) ** (1 / 3)
        length, dmin = elong * d, ratio * d
        natural = float(np.clip(r.normal(1.0, 0.01), 0.97, 1.03))  # real fruit are not perfect ellipsoids
        weight = self.g_per_cm3 * math.pi / 6 * length * d * dmin / 1000 * natural
        defects: list[Defect] = []
        if r.random() < self.defect_rate:
            kind = str(r.choice(["spot", "spot", "rot", "scar", "sunburn"]))
            area = {"spot": r.uniform(10, 35), "rot": r.uniform(120, 300), "scar": r.uniform(25, 60),
                    "sunburn": r.uniform(140, 320)}[kind]
            defects.append(Defect(kind, float(area), float(r.uniform(-0.45, 0.45)), float(r.uniform(0, 2 * math.pi))))
        shade = r.integers(-12, 12)
        colour = (int(40 + shade), int(80 + shade), int(118 + shade * 1.2))
        return TrueFruit(self.fed, lane, 0.0, length, d, dmin, weight, float(r.uniform(-18, 18)),
                         float(r.uniform(0, 2 * math.pi)), tuple(defects), bool(r.random() < self.misshapen_rate),
                         colour)

    def _feed(self, upto_mm: float) -> None:
        """Put fruit on every lane up to `upto_mm` upstream of frame 0's origin (x decreasing)."""
        while self.max_fruit is None or self.fed < self.max_fruit:
            lane = int(np.argmax(self._next_x))  # fill the lanes evenly, nearest gap first
            if self._next_x[lane] <= -upto_mm:
                break
            f = self._new_fruit(lane)
            f = TrueFruit(**{**{k: getattr(f, k) for k in f.__slots__}, "x0_mm": self._next_x[lane]})
            self.fruit.append(f)
            self.fed += 1
            if self.rng.random() < self.touch_rate:  # the next one rolls up against this one
                gap = f.max_diameter_mm * 0.98  # rolled up against it: the outlines meet
            else:
                gap = f.max_diameter_mm + self.rng.uniform(25, 90)
            self._next_x[lane] -= gap

    def stop_feeding(self) -> None:
        """No more fruit after those already on the belt (the lot has ended): it runs empty."""
        self.max_fruit = self.fed

    def frames_to_empty(self) -> int:
        """With max_fruit set: frames until the last fruit has left the picture."""
        if self.max_fruit is None:
            raise ValueError("an endless belt never runs empty")
        self._feed(10**9)
        last = min(f.x0_mm for f in self.fruit) - 80  # the furthest upstream, and its length
        return int((self.width / self.px_per_mm - last) / self.advance_mm) + 2

    # -- drawing ------------------------------------------------------------------------------------------------
    def _draw_belt(self) -> np.ndarray:
        h, w = self.height, self.width
        img = np.empty((h, w, 3), np.uint8)
        img[:] = self.belt_bgr
        grain = self.rng.normal(0, 4, (h, w, 1)).astype(np.int16)
        img = np.clip(img.astype(np.int16) + grain, 0, 255).astype(np.uint8)
        img[: self.belt_top_px] = (150, 150, 145)  # the rail
        for lane in range(1, self.lanes):  # lane guides
            y = int(self.belt_top_px + lane * (h - self.belt_top_px) / self.lanes)
            img[y - 1 : y + 1] = np.clip(np.array(self.belt_bgr, np.int16) + 35, 0, 255).astype(np.uint8)
        if self.marker:
            side = round(self.marker_mm * self.px_per_mm)
            pad = max(4, side // 6)
            tag = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50),
                                                MARKER_ID, side)
            y0 = max(pad, (self.belt_top_px - side) // 2)
            img[y0 - pad : y0 + side + pad, 20 - pad : 20 + side + pad] = 255
            img[y0 : y0 + side, 20 : 20 + side] = tag[:, :, None]
        return img

    def _visible(self, f: TrueFruit, cx: float) -> tuple[float, float, float]:
        """(roll angle, half length px, half visible width px) of a fruit at x = cx."""
        a_mm, b_mm = f.max_diameter_mm / 2, f.min_diameter_mm / 2
        roll = f.roll0 + (cx / self.px_per_mm) / ((a_mm + b_mm) / 2)
        half_w = math.sqrt((a_mm * math.cos(roll)) ** 2 + (b_mm * math.sin(roll)) ** 2) * self.px_per_mm
        return roll, f.length_mm / 2 * self.px_per_mm, half_w

    def visible_width_mm(self, f: TrueFruit, cx: float) -> float:
        """The equatorial diameter facing the camera when the fruit is at x = cx (px)."""
        return 2 * self._visible(f, cx)[2] / self.px_per_mm

    def _half_extent_x(self, f: TrueFruit, cx: float) -> float:
        _, half_l, half_w = self._visible(f, cx)
        t = math.radians(f.tilt_deg)
        return math.hypot(half_l * math.sin(t), half_w * math.cos(t))

    def _draw_fruit(self, img: np.ndarray, f: TrueFruit, cx: float, cy: float) -> None:
        ppm = self.px_per_mm
        roll, half_l, half_w = self._visible(f, cx)
        reach = int(max(half_l, half_w) + 4)
        x0, y0 = int(cx) - reach, int(cy) - reach
        x1, y1 = x0 + 2 * reach + 1, y0 + 2 * reach + 1
        X0, Y0, X1, Y1 = max(0, x0), max(0, y0), min(self.width, x1), min(self.height, y1)
        if X0 >= X1 or Y0 >= Y1:
            return
        ys, xs = np.mgrid[Y0:Y1, X0:X1].astype(np.float32)
        t = math.radians(f.tilt_deg)
        dx, dy = xs - cx, ys - cy
        u = (dx * math.sin(t) + dy * math.cos(t)) / half_l  # along the long axis
        v = (dx * math.cos(t) - dy * math.sin(t)) / half_w  # across
        rr = u * u + v * v
        inside_r = np.ones_like(rr)
        if f.misshapen:  # a notch on one flank (fan-shaped, "double" fruit)
            ang = np.arctan2(u, v)
            inside_r = 1 - 0.22 * np.exp(-(((ang - 0.6 + math.pi) % (2 * math.pi) - math.pi) / 0.45) ** 2)
        inside = rr <= inside_r**2
        if not inside.any():
            return
        patch = img[Y0:Y1, X0:X1].astype(np.float32)
        skin = np.empty_like(patch)
        skin[:] = f.colour
        shade = 1.0 - 0.22 * np.clip(rr, 0, 1) ** 2  # rounder towards the rim, a little darker
        tex = self._noise[(ys.astype(np.int32) * 7 + f.id) % 256, (xs.astype(np.int32) * 3 + f.id * 5) % 256]
        skin = skin * shade[:, :, None] + tex[:, :, None] * 7  # fuzz
        for d in f.defects:
            facing = math.cos(roll + d.angle)
            if facing < 0.25:
                continue  # on the far side just now
            dv = math.sin(roll + d.angle) * 0.85
            r_mm = math.sqrt(d.area_mm2 / math.pi)
            du_n, dv_n = (r_mm * ppm) / half_l, (r_mm * ppm * facing) / half_w
            if d.kind == "scar":  # a corky line along the fruit
                du_n, dv_n = (d.area_mm2 / 1.6) / 2 * ppm / half_l, 0.8 * ppm * facing / half_w
            blob = ((u - d.along) / du_n) ** 2 + ((v - dv) / max(dv_n, 1e-3)) ** 2 <= 1
            blob &= inside
            colour = {"spot": (20, 35, 50), "rot": (18, 28, 40), "scar": (110, 150, 175),
                      "sunburn": (95, 175, 200)}[d.kind]
            skin[blob] = skin[blob] * 0.2 + np.array(colour, np.float32) * 0.8
        patch[inside] = skin[inside]
        img[Y0:Y1, X0:X1] = np.clip(patch, 0, 255).astype(np.uint8)

    def frame(self, n: int) -> tuple[np.ndarray, list[Seen]]:
        """Frame number n and where each fruit in it is."""
        self._feed(n * self.advance_mm + 200)
        img = self._belt.copy()
        seen: list[Seen] = []
        span_px = self.width
        if self.forget:
            self.fruit = [f for f in self.fruit if self.x_px(f, n) <= span_px + f.length_mm * self.px_per_mm]
        for f in self.fruit:
            cx = self.x_px(f, n)
            reach = f.length_mm * self.px_per_mm
            if cx < -reach or cx > span_px + reach:
                continue
            cy = self.lane_y_px(f.lane)
            self._draw_fruit(img, f, cx, cy)
            half = self._half_extent_x(f, cx) + 2
            seen.append(Seen(f, cx, cy, half < cx < span_px - half))
        if self.drift:
            level = 1.0 + 0.15 * math.sin(n / 90) + 0.05 * math.sin(n / 13)
            ramp = np.linspace(0.9, 1.1, self.width, dtype=np.float32)[None, :, None]
            img = np.clip(img.astype(np.float32) * level * ramp, 0, 255).astype(np.uint8)
        if self.blur_px > 1:
            kernel = np.zeros((1, self.blur_px), np.float32)
            kernel[:] = 1 / self.blur_px
            img = cv2.filter2D(img, -1, kernel)
        return img, seen

    def frames(self, count: int, start: int = 0) -> Iterator[tuple[np.ndarray, list[Seen]]]:
        for n in range(start, start + count):
            yield self.frame(n)

