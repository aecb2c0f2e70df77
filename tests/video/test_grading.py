"""The grading line, table-driven on the conveyor simulator's fruit of known size, weight and defects."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import orjson
import pytest

from orchard.settings import GradingSettings
from video.grading.calibrate import Calibrator, MarkerMissing
from video.grading.conveyor import Conveyor
from video.grading.evaluate import Truth, match, score
from video.grading.grade import count_size, grade
from video.grading.grader import Grader, fit_reference
from video.grading.measure import FrameMeasurer
from video.grading.results import GradedFruit

CFG = GradingSettings()


@pytest.mark.parametrize(("belt", "blur", "drift", "max_mae_mm"), [
    ((60, 95, 50), 0, True, 0.5),  # dark green belt
    ((25, 25, 25), 0, True, 0.5),  # black
    ((205, 205, 200), 0, True, 0.5),  # white
    ((150, 90, 40), 0, False, 0.5),  # blue
    ((60, 95, 50), 5, True, 1.0),  # 5 px (3 mm) of motion blur across the fruit's width
])
def test_sizes_in_one_frame(belt: tuple[int, int, int], blur: int, drift: bool, max_mae_mm: float) -> None:
    c = Conveyor(seed=21, belt_bgr=belt, blur_px=blur, drift=drift, misshapen_rate=0)
    m = FrameMeasurer(CFG)
    length_err, width_err = [], []
    for n in (25, 31):
        image, seen = c.frame(n)
        result = m.measure(image)
        for s in (s for s in seen if 120 < s.x_px < c.width - 120):  # not pressed against one cut by the edge
            v = min(result.fruit, key=lambda v: math.hypot(v.x_px - s.x_px, v.y_px - s.y_px))
            assert math.hypot(v.x_px - s.x_px, v.y_px - s.y_px) < 6  # found where it is
            length_err.append(abs(v.length_mm - s.fruit.length_mm))
            width_err.append(abs(v.width_mm - c.visible_width_mm(s.fruit, s.x_px)))
    assert len(length_err) > 50
    assert np.mean(length_err) < max_mae_mm and np.mean(width_err) < max_mae_mm, (np.mean(length_err),
                                                                                  np.mean(width_err))


@pytest.mark.parametrize(("weight", "ratio", "defects", "expected"), [
    (95, 0.85, {}, "extra"),
    (90, 0.80, {}, "extra"),  # both limits are inclusive
    (89.9, 0.85, {}, "class1"),
    (95, 0.79, {}, "class1"),
    (95, 0.85, {"spot": 20}, "class1"),
    (95, 0.85, {"scar": 100}, "class1"),  # 1 cm2 of skin defects is still Class I
    (95, 0.85, {"scar": 101}, "class2"),
    (95, 0.85, {"misshapen": 1.0}, "class2"),
    (70, 0.70, {}, "class1"),
    (69.9, 0.85, {}, "class2"),
    (95, 0.69, {}, "class2"),
    (65, 0.60, {"sunburn": 200}, "class2"),
    (64.9, 0.85, {}, "reject"),
    (95, 0.85, {"sunburn": 201}, "reject"),
    (120, 0.95, {"rot": 10}, "reject"),  # rot, however small
])
def test_class_limits(weight: float, ratio: float, defects: dict[str, float], expected: str) -> None:
    assert grade(weight, ratio, defects, CFG)[0] == expected


@pytest.mark.parametrize(("weight", "size"), [(250, 18), (196, 18), (195, 22), (100, 36), (98, 36), (97.9, 39),
                                              (77, 46), (76.6, None), (60, None)])
def test_count_sizes(weight: float, size: int | None) -> None:
    assert count_size(weight, CFG) == size


@pytest.mark.parametrize("px_per_mm", [1.3, 1.6])
def test_marker_calibration(px_per_mm: float) -> None:
    c = Conveyor(seed=2, px_per_mm=px_per_mm)
    for n in (0, 40, 90):  # with the light drifting
        image = c.frame(n)[0]
        jpeg = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_COLOR)
        for frame in (image, jpeg):
            assert Calibrator(30, 0.12).px_per_mm(frame) == pytest.approx(px_per_mm, rel=0.005)


def test_marker_missing_is_an_error_not_wrong_millimetres() -> None:
    c = Conveyor(seed=2, marker=False)
    image = c.frame(10)[0]
    with pytest.raises(MarkerMissing, match="marker not found"):
        FrameMeasurer(CFG).measure(image)
    assert FrameMeasurer(CFG, px_per_mm=1.6).measure(image).fruit  # a fixed scale needs no marker


def test_configured_scale_is_used_as_given() -> None:
    c = Conveyor(seed=2)
    image = c.frame(20)[0]
    wrong = FrameMeasurer(CFG, px_per_mm=3.2).measure(image)  # twice the true scale: half the size
    right = FrameMeasurer(CFG).measure(image)
    assert wrong.px_per_mm == 3.2
    assert np.median([v.length_mm for v in wrong.fruit]) == pytest.approx(
        np.median([v.length_mm for v in right.fruit]) / 2, rel=0.02)


def test_touching_fruit_are_separated() -> None:
    c = Conveyor(seed=8, touch_rate=0.5)  # every other fruit is pressed against the one before it
    m = FrameMeasurer(CFG)
    for n in (20, 27):
        image, seen = c.frame(n)
        found = [v for v in m.measure(image).fruit if not v.touches_edge]
        assert sum(v.split for v in found) >= 8  # they did touch
        # away from the edges (a fruit pressed against one the edge cuts is measured in the next frame)
        mid = [s for s in seen if 120 < s.x_px < c.width - 120]
        assert abs(len([v for v in found if 120 < v.x_px < c.width - 120]) - len(mid)) <= 1
        for s in mid:
            v = min(found, key=lambda v: math.hypot(v.x_px - s.x_px, v.y_px - s.y_px))
            assert abs(v.length_mm - s.fruit.length_mm) < 3


def run_lot(fruit: int, seed: int, cfg: GradingSettings = CFG, **kw: object) -> tuple[list[GradedFruit], Truth,
                                                                                     Conveyor]:
    c = Conveyor(seed=seed, max_fruit=fruit, **kw)  # type: ignore[arg-type]
    grader, truth, out = Grader(cfg), Truth(), []
    for n in range(c.frames_to_empty()):
        image, seen = c.frame(n)
        truth.add(n, seen)
        out += grader.process(image)
    return out + grader.flush(), truth, c


def test_each_fruit_counted_and_graded_once_across_frames() -> None:
    graded, truth, c = run_lot(150, seed=31)
    assert len(truth.fruit) == 150
    assert len(graded) == 150 and len({g.id for g in graded}) == 150
    assert all(g.frames >= 8 for g in graded)  # seen whole in many frames, graded once
    s = score(graded, truth, CFG, c.px_per_mm)
    assert s.matched == 150
    assert s.diameter_mae_mm < 0.6 and s.min_diameter_mae_mm < 0.6 and s.weight_mae_g < 3
    assert s.class_accuracy >= 0.93
    assert {g.lane for g in graded} == set(range(5))


def test_defects_are_found_by_kind() -> None:
    graded, truth, c = run_lot(120, seed=41, defect_rate=1.0, misshapen_rate=0.25)
    found: dict[str, list[bool]] = {}
    for g, t in match(graded, truth, c.px_per_mm):
        for kind in t.defect_areas():
            found.setdefault(kind, []).append(kind in g.defects)
    assert set(found) == {"spot", "rot", "scar", "sunburn", "misshapen"}
    for kind, hits in found.items():
        assert sum(hits) / len(hits) >= 0.8, (kind, sum(hits), len(hits))


def test_empty_belt() -> None:
    c = Conveyor(seed=1, max_fruit=0)
    grader = Grader(CFG)
    for n in range(10):
        assert grader.process(c.frame(n)[0]) == []
        assert grader.last is not None and grader.last.fruit == ()
    assert grader.flush() == []


def test_reference_calibration_recovers_the_size_bias_and_density() -> None:
    graded, truth, c = run_lot(60, seed=51)
    pairs = match(graded, truth, c.px_per_mm)
    known = [(t.length_mm, t.max_diameter_mm, t.min_diameter_mm, t.weight_g) for _, t in pairs]
    biased = [GradedFruit(**{**{k: getattr(g, k) for k in g.__slots__},  # type: ignore[arg-type]
                             "length_mm": g.length_mm - 1.5, "max_diameter_mm": g.max_diameter_mm - 1.5,
                             "min_diameter_mm": g.min_diameter_mm - 1.5}) for g, _ in pairs]
    fitted = fit_reference(biased, known, CFG.model_copy(update={"g_per_cm3": 0.8}))
    assert fitted.size_offset_mm == pytest.approx(1.5, abs=0.3)
    assert fitted.g_per_cm3 == pytest.approx(1.05, rel=0.03)
    with pytest.raises(ValueError, match="at least 10"):
        fit_reference(biased[:5], known[:5], CFG)


def test_measure_command_prints_a_json_line_per_fruit(tmp_path: Path) -> None:
    c = Conveyor(seed=3)
    image, seen = c.frame(20)
    cv2.imwrite(str(tmp_path / "belt.png"), image)
    bare = image.copy()
    bare[: int(image.shape[0] * 0.12)] = 150  # the marker wiped off
    cv2.imwrite(str(tmp_path / "nomarker.png"), bare)
    cmd = [sys.executable, "-m", "app", "grading", "measure"]
    ok = subprocess.run([*cmd, str(tmp_path / "belt.png")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    lines = [orjson.loads(x) for x in ok.stdout.splitlines()]
    assert len(lines) == sum(s.whole for s in seen)
    keys = {"image", "x_px", "y_px", "length_mm", "max_diameter_mm", "min_diameter_mm", "weight_g", "grade",
            "count_size", "defects"}
    assert all(keys <= set(x) for x in lines)
    assert all(x["grade"] in ("extra", "class1", "class2", "reject") for x in lines)
    bad = subprocess.run([*cmd, str(tmp_path / "nomarker.png")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "标定标记未找到" in bad.stderr and bad.stdout == ""
    fixed = subprocess.run([*cmd, "--px-per-mm", "1.6", str(tmp_path / "nomarker.png")], capture_output=True,
                           text=True, timeout=120)
    assert fixed.returncode == 0 and len(fixed.stdout.splitlines()) == len(lines)
