"""`orchard bench grading`: the grader on a held-out simulator lot, for accuracy and speed on one core.

The conveyor simulator renders a lot of `fruit` kiwifruit at 1280x720 on five lanes (the belt fills, runs, and
empties), encoded as JPEG like a camera's frames. The grader decodes and grades every frame; its fruit are
matched to the simulator's truth (video/grading/evaluate.py). The floor, in the same run on the same core, is
bare JPEG decode of the same frames, expressed as fruit per second like the grader.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import cv2
import numpy as np

from orchard.logs import progress
from orchard.settings import GradingSettings
from video.grading.conveyor import Conveyor
from video.grading.evaluate import Truth, match, score
from video.grading.grader import Grader, fit_reference
from video.grading.results import GradedFruit


def render_lot(fruit: int, seed: int) -> tuple[list[bytes], Truth, Conveyor]:
    conveyor = Conveyor(seed=seed, max_fruit=fruit)
    truth = Truth()
    frames: list[bytes] = []
    total = conveyor.frames_to_empty()
    with progress() as bar:
        task = bar.add_task("rendering the lot / 生成模拟批次", total=total)
        for n in range(total):
            image, seen = conveyor.frame(n)
            truth.add(n, seen)
            frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
            bar.advance(task)
    return frames, truth, conveyor


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("a frame is not a JPEG")
    return image


def grade_lot(frames: list[bytes], cfg: GradingSettings) -> tuple[list[GradedFruit], float]:
    grader = Grader(cfg)
    out: list[GradedFruit] = []
    t0 = time.perf_counter()
    for data in frames:
        out += grader.process(decode(data))
    out += grader.flush()
    return out, time.perf_counter() - t0


def calibrated(seed: int) -> GradingSettings:
    """Settings calibrated on a reference lot of 150 fruit from another seed, as a packhouse does with fruit it
    has measured by hand: the camera's size bias and the weight per cm3."""
    frames, truth, conveyor = render_lot(150, seed)
    graded, _ = grade_lot(frames, GradingSettings())
    pairs = match(graded, truth, conveyor.px_per_mm)
    return fit_reference([g for g, _ in pairs], [(t.length_mm, t.max_diameter_mm, t.min_diameter_mm, t.weight_g)
                                                 for _, t in pairs], GradingSettings())


def run_bench(*, fruit: int, seed: int, repeat: int, calibration_seed: int = 7) -> dict[str, object]:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    cfg = calibrated(calibration_seed)
    frames, truth, conveyor = render_lot(fruit, seed)
    floors, rates = [], []
    scores = None
    for run in range(repeat):
        t0 = time.perf_counter()
        for data in frames:
            decode(data)
        floors.append(len(truth.fruit) / (time.perf_counter() - t0))
        graded, seconds = grade_lot(frames, cfg)
        rates.append(len(graded) / seconds)
        if scores is None:
            scores = score(graded, truth, cfg, conveyor.px_per_mm)
        print(f"run {run + 1}/{repeat}: floor {floors[-1]:.0f} fruit/s (decode only), grader {rates[-1]:.1f} "
              f"fruit/s", flush=True)
    assert scores is not None
    result: dict[str, object] = {
        "bench": "grading",
        "seed": seed,
        "frames": len(frames),
        "frame": f"{conveyor.width}x{conveyor.height} JPEG q90, {conveyor.lanes} lanes",
        "fruit": len(truth.fruit),
        "calibration": {"seed": calibration_seed, "fruit": 150, "size_offset_mm": cfg.size_offset_mm,
                        "g_per_cm3": cfg.g_per_cm3},
        **{k: v for k, v in scores.as_json().items() if k != "confusion"},
        "fruit_per_s": round(statistics.median(rates), 1),
        "floor_decode_fruit_per_s": round(statistics.median(floors), 1),
        "ratio_to_floor": round(statistics.median(rates) / statistics.median(floors), 3),
        "confusion": scores.confusion,
        "runs": repeat,
        "target": {"diameter_mae_mm": 1.0, "weight_mae_g": 5, "class_accuracy": 0.95, "count_error": 0.01,
                   "fruit_per_s": 50},
    }
    print(json.dumps(result), flush=True)
    return result
