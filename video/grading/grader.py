"""The grading line's pipeline: frame -> fruit measured in it -> tracks -> each fruit graded once."""

from __future__ import annotations

import math
import statistics

import numpy as np

from orchard.settings import GradingSettings
from video.grading.grade import count_size, grade
from video.grading.measure import FrameMeasurer
from video.grading.results import FrameResult, FruitView, GradedFruit
from video.grading.track import Tracker


def weigh(length_mm: float, dmax_mm: float, dmin_mm: float, cfg: GradingSettings) -> tuple[float, float]:
    """(volume cm3, weight g) of the ellipsoid with these axes."""
    volume = math.pi / 6 * length_mm * dmax_mm * dmin_mm / 1000
    return volume, volume * cfg.g_per_cm3


def equatorial(views: list[FruitView]) -> tuple[float, float]:
    """(max, min) equatorial diameter of a fruit rolling about its long axis as it travels.

    The width it shows swings as w^2 = (D1^2 + D2^2)/2 + (D1^2 - D2^2)/2 cos 2(x/r + phase), x the distance
    travelled and r its rolling radius: a least-squares fit of that curve over all its views (r searched near
    the mean half-width) uses every view, where the widest and narrowest single views carry their own noise.
    With too few views, or a poor fit (a fruit that slid instead of rolling), the extremes are used."""
    widths = np.array([v.width_mm for v in views])
    extremes = float(widths.max()), float(widths.min())
    if len(views) < 6:
        return extremes
    x = np.array([v.x_mm for v in views])
    y = widths**2
    best: tuple[float, np.ndarray] | None = None
    for r in widths.mean() / 2 * np.linspace(0.9, 1.1, 41):
        basis = np.column_stack([np.ones_like(x), np.cos(2 * x / r), np.sin(2 * x / r)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        err = float(np.sum((basis @ coef - y) ** 2))
        if best is None or err < best[0]:
            best = (err, coef)
    assert best is not None
    err, (mean, c, s) = best
    amp = math.hypot(c, s)
    if mean - amp <= 0 or math.sqrt(err / len(views)) > 0.05 * mean:
        return extremes
    return math.sqrt(mean + amp), math.sqrt(mean - amp)


def graded_from(fruit_id: int, views: list[FruitView], cfg: GradingSettings, frame_h: int) -> GradedFruit | None:
    """One fruit from its views; None when it was never seen whole (it left before, or came after, the run)."""
    whole = [v for v in views if not v.touches_edge]
    if not whole:
        return None
    typical = statistics.median(v.area_mm2 for v in whole)
    whole = [v for v in whole if v.area_mm2 < 1.35 * typical] or whole  # a frame where it merged with another
    off = cfg.size_offset_mm
    length = statistics.median(v.length_mm for v in whole) + off
    dmax, dmin = equatorial(whole)
    dmax, dmin = dmax + off, dmin + off
    volume, weight = weigh(length, dmax, dmin, cfg)
    defects: dict[str, float] = {}
    for v in whole:
        for kind, area in v.defects.items():
            defects[kind] = max(defects.get(kind, 0.0), area)
    own = [v for v in whole if not v.split] or whole  # a cut from a neighbour is not the fruit's own dent
    if statistics.median(v.dent for v in own) > cfg.misshapen_dent:
        defects["misshapen"] = 1.0
    ratio = dmin / dmax if dmax else 0.0
    cls, reasons = grade(weight, ratio, defects, cfg)
    first = whole[0]
    top = frame_h * cfg.roi_top
    lane = int(np.clip((first.y_px - top) / ((frame_h - top) / cfg.lanes), 0, cfg.lanes - 1))
    return GradedFruit(fruit_id, lane, first.x_px, first.y_px, first.frame, len(whole), length, dmax, dmin,
                       statistics.median(v.area_mm2 for v in whole), volume, weight, ratio,
                       statistics.median(v.colour_std for v in whole), defects, cls, count_size(weight, cfg),
                       reasons)


class Grader:
    """Feed it frames in order; it returns each fruit once, graded, when the fruit has left the picture."""

    def __init__(self, cfg: GradingSettings, px_per_mm: float | None = None) -> None:
        self.cfg = cfg
        self.measurer = FrameMeasurer(cfg, px_per_mm)
        self.frame_h = 0
        self.tracker = Tracker(lambda fid, views: graded_from(fid, views, cfg, self.frame_h))
        self.last: FrameResult | None = None
        self.frames = 0

    def process(self, frame: np.ndarray) -> list[GradedFruit]:
        self.frame_h = frame.shape[0]
        self.last = self.measurer.measure(frame, self.frames)
        self.frames += 1
        return self.tracker.update(self.last)

    def flush(self) -> list[GradedFruit]:
        return self.tracker.flush()


def fit_reference(graded: list[GradedFruit], known: list[tuple[float, float, float, float]],
                  cfg: GradingSettings) -> GradingSettings:
    """Calibrate on reference fruit: `known` holds (length, max diameter, min diameter, weight) from calipers and
    a scale, in the order the fruit were graded. Returns the settings with size_offset_mm and g_per_cm3 fitted:
    the mean size difference, then the weight per cm3 of the corrected ellipsoids."""
    if len(graded) != len(known) or len(known) < 10:
        raise ValueError(f"参考果数量不符 / need the same number (at least 10) of graded and reference fruit: "
                         f"{len(graded)} graded, {len(known)} known")
    base = cfg.size_offset_mm
    diffs = [k[i] - (g_val - base) for g, k in zip(graded, known, strict=True)
             for i, g_val in enumerate((g.length_mm, g.max_diameter_mm, g.min_diameter_mm))]
    off = statistics.fmean(diffs)
    volumes = [math.pi / 6 * (g.length_mm - base + off) * (g.max_diameter_mm - base + off)
               * (g.min_diameter_mm - base + off) / 1000 for g in graded]
    density = sum(k[3] for k in known) / sum(volumes)
    return cfg.model_copy(update={"size_offset_mm": round(off, 3), "g_per_cm3": round(density, 4)})
