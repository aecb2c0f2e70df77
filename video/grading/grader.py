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


def graded_from(fruit_id: int, views: list[FruitView], cfg: GradingSettings, frame_h: int) -> GradedFruit | None:
    """One fruit from its views; None when it was never seen whole (it left before, or came after, the run)."""
    whole = [v for v in views if not v.touches_edge]
    if not whole:
        return None
    length = statistics.median(v.length_mm for v in whole)
    widths = sorted(v.width_mm for v in whole)
    dmax, dmin = widths[-1], widths[0]
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
