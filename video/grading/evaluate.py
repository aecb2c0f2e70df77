"""Grader against the conveyor simulator's truth: each graded fruit matched to the true fruit at the place and
frame it was first seen whole; errors, class accuracy and the count. Used by the tests and `orchard bench grading`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchard.settings import GradingSettings
from video.grading.conveyor import Seen, TrueFruit
from video.grading.grade import grade
from video.grading.results import GradedFruit


@dataclass
class Truth:
    """Where each fruit was whole, frame by frame, as the simulator drew it."""

    at: dict[int, list[Seen]] = field(default_factory=dict)  # frame -> fruit in it
    fruit: dict[int, TrueFruit] = field(default_factory=dict)  # fruit seen whole at least once

    def add(self, frame: int, seen: Iterable[Seen]) -> None:
        self.at[frame] = list(seen)
        for s in self.at[frame]:
            if s.whole:
                self.fruit[s.fruit.id] = s.fruit


@dataclass(frozen=True)
class Scores:
    true_count: int
    counted: int
    matched: int
    diameter_mae_mm: float  # maximum equatorial diameter
    min_diameter_mae_mm: float
    length_mae_mm: float
    weight_mae_g: float
    class_accuracy: float
    count_error: float  # |counted - true| / true
    confusion: dict[str, dict[str, int]]  # true class -> graded class -> n

    def as_json(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def match(graded: list[GradedFruit], truth: Truth, px_per_mm: float) -> list[tuple[GradedFruit, TrueFruit]]:
    """Each graded fruit with the true fruit nearest to where it was first seen whole (within 15 mm)."""
    pairs: list[tuple[GradedFruit, TrueFruit]] = []
    taken: set[int] = set()
    for g in graded:
        candidates = [s for s in truth.at.get(g.frame, []) if s.fruit.id not in taken]
        best = min(candidates, key=lambda s: math.hypot(s.x_px - g.x_px, s.y_px - g.y_px), default=None)
        if best is not None and math.hypot(best.x_px - g.x_px, best.y_px - g.y_px) < 15 * px_per_mm:
            pairs.append((g, best.fruit))
            taken.add(best.fruit.id)
    return pairs


def score(graded: list[GradedFruit], truth: Truth, cfg: GradingSettings, px_per_mm: float) -> Scores:
    pairs = match(graded, truth, px_per_mm)
    confusion: dict[str, dict[str, int]] = {}
    right = 0
    for g, t in pairs:
        true_class, _ = grade(t.weight_g, t.ratio, t.defect_areas(), cfg)
        confusion.setdefault(true_class, {}).setdefault(g.grade, 0)
        confusion[true_class][g.grade] += 1
        right += true_class == g.grade
    n = max(1, len(pairs))
    return Scores(
        true_count=len(truth.fruit), counted=len(graded), matched=len(pairs),
        diameter_mae_mm=sum(abs(g.max_diameter_mm - t.max_diameter_mm) for g, t in pairs) / n,
        min_diameter_mae_mm=sum(abs(g.min_diameter_mm - t.min_diameter_mm) for g, t in pairs) / n,
        length_mae_mm=sum(abs(g.length_mm - t.length_mm) for g, t in pairs) / n,
        weight_mae_g=sum(abs(g.weight_g - t.weight_g) for g, t in pairs) / n,
        class_accuracy=right / n,
        count_error=abs(len(graded) - len(truth.fruit)) / max(1, len(truth.fruit)),
        confusion=confusion,
    )
