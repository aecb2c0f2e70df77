"""One photo, measured and graded on its own (`orchard grading measure`): every whole fruit in it."""

from __future__ import annotations

from pathlib import Path

import cv2

from orchard.settings import GradingSettings
from video.grading.grader import graded_from
from video.grading.measure import FrameMeasurer


def measure_photo(path: Path, cfg: GradingSettings, px_per_mm: float | None = None) -> list[dict[str, object]]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"无法读取图片 / not a readable image: {path}")
    frame = FrameMeasurer(cfg, px_per_mm).measure(image)
    out = []
    for i, view in enumerate(frame.fruit):
        fruit = graded_from(i, [view], cfg, image.shape[0])
        if fruit is not None:  # cut by the photo's edge: not measured whole
            out.append(fruit.as_json(str(path)) | {"px_per_mm": round(frame.px_per_mm, 4)})
    return out
