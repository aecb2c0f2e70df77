"""One frame: find every fruit on the belt and measure it.

Segmentation does not assume a belt colour: the belt is whatever colour most of the belt area has in this frame
(the median, so lighting drift moves with it), and fruit is what differs from it in Lab, with lightness counting
less than colour (shadows and drift change lightness most). Fruit that touch are split by the distance transform
and a watershed. Sizes come from each fruit's second moments (the ellipse with the same spread as its pixels),
which, unlike a fitted outline, does not lose half a pixel at every edge. Defects are patches much darker, or
lighter and yellower, than the fruit's own skin; a notch or lobe in the outline is a misshapen fruit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from orchard.settings import GradingSettings
from video.grading.calibrate import Calibrator
from video.grading.results import FrameResult, FruitView

_K3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def belt_colour(lab: np.ndarray) -> np.ndarray:
    sample = lab[::7, ::7].reshape(-1, 3)
    return np.median(sample, axis=0)


def fruit_mask(lab: np.ndarray, belt: np.ndarray) -> np.ndarray:
    """Fruit pixels: colour far from the belt's, the edge halfway between the belt and the fruit's rim (which is
    darker than its middle, so a blurred edge is not pulled inwards)."""
    diff = lab.astype(np.int16) - belt.astype(np.int16)
    dist = (np.abs(diff[:, :, 0]) // 2 + np.abs(diff[:, :, 1]) + np.abs(diff[:, :, 2])).astype(np.float32)
    dist8 = cv2.GaussianBlur(np.clip(dist * 2, 0, 255).astype(np.uint8), (5, 5), 0)
    level, mask = cv2.threshold(dist8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if level < 30:  # an empty (or nearly empty) belt: Otsu splits the belt's own grain
        mask = cv2.threshold(dist8, 60, 255, cv2.THRESH_BINARY)[1]
    else:
        rim = cv2.subtract(cv2.erode(mask, _K5, iterations=2), cv2.erode(mask, _K5, iterations=4))
        rim_level = cv2.mean(dist8, mask=rim)[0]
        belt_level = cv2.mean(dist8, mask=cv2.bitwise_not(cv2.dilate(mask, _K5, iterations=2)))[0]
        mask = cv2.threshold(dist8, (rim_level + belt_level) / 2, 255, cv2.THRESH_BINARY)[1]
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _K5)


def split_touching(mask: np.ndarray, min_px: float, levels: tuple[float, ...] = (0.6,)) -> list[np.ndarray]:
    """The component as one or more fruit masks (same shape as `mask`): touching fruit are separated where the
    distance transform has a waist (cores above `level` of its peak; higher levels find shallower waists)."""
    dt = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    for level in levels:
        peaks = (dt >= level * float(dt.max())).astype(np.uint8)
        n, markers = cv2.connectedComponents(peaks)
        if n > 2:
            break
    else:
        return [mask]
    markers = markers + 1
    markers[mask == 0] = 0
    markers[(mask > 0) & (peaks == 0)] = 0
    markers[mask == 0] = 1  # background
    markers = markers.astype(np.int32)
    cv2.watershed(cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR), markers)
    parts = []
    for label in range(2, n + 1):
        part = ((markers == label) & (mask > 0)).astype(np.uint8) * 255
        if cv2.countNonZero(part) >= min_px:
            parts.append(part)
    return parts or [mask]


def _axes(part: np.ndarray) -> tuple[float, float, float, float, float]:
    """(length, width, centre x, centre y, area) in px from the second moments of the filled region: those of
    the ellipse with the same spread (unlike a fitted outline, it does not lose half a pixel at every edge)."""
    m = cv2.moments(part, binaryImage=True)
    area = m["m00"]
    cx, cy = m["m10"] / area, m["m01"] / area
    mu20, mu02, mu11 = m["mu20"] / area, m["mu02"] / area, m["mu11"] / area
    common = math.sqrt(((mu20 - mu02) / 2) ** 2 + mu11**2)
    l1, l2 = (mu20 + mu02) / 2 + common, (mu20 + mu02) / 2 - common
    return 4 * math.sqrt(max(l1, 0)), 4 * math.sqrt(max(l2, 0)), cx, cy, area


def _dent(contour: np.ndarray, cut: np.ndarray | None) -> float:
    """Depth in px of the deepest concavity of an outline, leaving out those at a cut from a touching
    neighbour (the corners where two fruit meet are not a dent of either)."""
    hull = cv2.convexHull(contour, returnPoints=False)
    if hull is None or len(hull) < 4:
        return 0.0
    try:
        found = cv2.convexityDefects(contour, hull)
    except cv2.error:  # a self-touching outline: no defects to speak of
        return 0.0
    if found is None or not len(found):
        return 0.0
    deepest = 0.0
    for _, _, far, depth in np.asarray(found).reshape(-1, 4):
        x, y = contour[far][0]
        if cut is not None and cut[y, x]:
            continue
        deepest = max(deepest, depth / 256)
    return deepest


def _skin(lab: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean Lab of the skin (inside the rim) and its colour spread (mean std of a* and b*)."""
    mean, std = cv2.meanStdDev(lab, mask=inner)
    return mean.ravel(), float((std[1][0] + std[2][0]) / 2)


def _defects(lab: np.ndarray, inner: np.ndarray, skin: np.ndarray, mm2_per_px: float) -> dict[str, float]:
    """Patches much darker, or lighter, than the fruit's own skin, by kind: small dark ones are spots, large
    dark ones rot, long thin ones scars, light yellow ones sunburn."""
    light = lab[:, :, 0]
    dark = cv2.bitwise_and(cv2.inRange(light, 0, max(0, int(skin[0]) - 30)), inner)
    pale = cv2.bitwise_and(cv2.inRange(light, min(255, int(skin[0]) + 22), 255), inner)
    min_px = 4 / mm2_per_px
    out: dict[str, float] = {}
    for patches, tone in ((dark, "dark"), (pale, "pale")):
        if cv2.countNonZero(patches) < min_px:
            continue  # most fruit: nothing to look at
        n, labels, stats, _ = cv2.connectedComponentsWithStats(patches)
        for i in range(1, n):
            area_mm2 = float(stats[i, cv2.CC_STAT_AREA]) * mm2_per_px
            if area_mm2 < 4:
                continue
            w, h = stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]
            ys, xs = np.nonzero(labels == i)
            (_, _), (rw, rh), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
            if max(rw, rh) > 3.5 * max(1.0, min(rw, rh)) and max(w, h) > 6:
                kind = "scar"
            elif tone == "dark":
                kind = "rot" if area_mm2 >= 60 else "spot"
            elif float(np.median(lab[:, :, 2][labels == i])) > skin[2] + 8:
                kind = "sunburn"
            else:
                kind = "scar"
            out[kind] = out.get(kind, 0.0) + area_mm2
    return out


class FrameMeasurer:
    """Frame -> every fruit in it, measured. The scale is fixed, or read from the marker in every frame."""

    def __init__(self, cfg: GradingSettings, px_per_mm: float | None = None) -> None:
        self.cfg = cfg
        self.fixed = px_per_mm or cfg.px_per_mm
        self.calibrator = Calibrator(cfg.marker_mm, cfg.roi_top)
        self.single_px = math.pi / 4 * 70 * 52  # a typical fruit's outline in mm2 (learnt as frames come)

    def measure(self, frame: np.ndarray, index: int = 0) -> FrameResult:
        ppm = self.fixed or self.calibrator.px_per_mm(frame)
        top = int(frame.shape[0] * self.cfg.roi_top)
        belt_img = frame[top:]
        lab = cv2.cvtColor(belt_img, cv2.COLOR_BGR2LAB)
        belt = belt_colour(lab)
        mask = fruit_mask(lab, belt)
        h, w = mask.shape
        min_px = (20 * ppm) ** 2  # nothing smaller than a 20 mm square is a kiwifruit
        mm2 = 1 / (ppm * ppm)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
        views: list[FruitView] = []
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < min_px:
                continue
            pad = 2
            x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
            comp = ((labels[y0:y1, x0:x1] == i).astype(np.uint8)) * 255
            contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(comp, contours, -1, 255, cv2.FILLED)  # fill holes (dark defects inside)
            outline = max(contours, key=cv2.contourArea)
            solidity = cv2.countNonZero(comp) / max(1.0, cv2.contourArea(cv2.convexHull(outline)))
            # two fruit pressed together: a waist, deeper than any single fruit's own dent
            waist = _dent(outline, None) / max(1.0, min(bw, bh))
            if area > 1.45 * self.single_px * ppm * ppm:  # too big for one fruit: two pressed flank to flank
                parts = split_touching(comp, min_px, (0.6, 0.7, 0.8))
            elif solidity < 0.93 or waist > 0.08:
                parts = split_touching(comp, min_px)
            else:
                parts = [comp]
            sub_lab = lab[y0:y1, x0:x1]
            near_cut = [None] * len(parts) if len(parts) == 1 else [
                cv2.dilate(cv2.bitwise_and(comp, cv2.bitwise_not(p)), _K5, iterations=3) > 0 for p in parts]
            for part, cut in zip(parts, near_cut, strict=True):
                length, width, cx, cy, a = _axes(part)
                xs = np.nonzero(part)[1]
                edge = xs.min() + x0 <= 1 or xs.max() + x0 >= w - 2  # cut where the belt enters or leaves
                cnts, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                c = max(cnts, key=cv2.contourArea)
                dent = _dent(c, cut) / max(1.0, width)
                inner = cv2.erode(part, _K5, iterations=2)
                skin, colour_std = _skin(sub_lab, inner)
                bx, by, bw2, bh2 = cv2.boundingRect(c)
                views.append(FruitView(cx + x0, cy + y0 + top, length / ppm, width / ppm, a * mm2, dent,
                                       colour_std, _defects(sub_lab, inner, skin, mm2), bool(edge),
                                       len(parts) > 1,
                                       (bx + x0, by + y0 + top, bw2, bh2), index, (cx + x0) / ppm))
        alone = [v.area_mm2 for v in views if not v.split and not v.touches_edge]
        if len(alone) >= 5:
            self.single_px = 0.8 * self.single_px + 0.2 * float(np.median(alone))
        belt_bgr = cv2.cvtColor(belt.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_LAB2BGR)[0, 0]
        return FrameResult(ppm, tuple(views), (int(belt_bgr[0]), int(belt_bgr[1]), int(belt_bgr[2])))
