"""What one snapshot is made into: a thumbnail, picture metrics, and moving objects. One result type per stage.

JPEGs from snapshot cameras are decoded at a reduced scale (libjpeg's DCT scaling: a 1920x1080 frame comes out
480x270 for a quarter of the work); the thumbnail and every metric come from that, and the full frame is kept
as the bytes the camera sent. Decoded frames (streams, files, the synthetic camera) are encoded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from orchard.site import CameraZone, Polygon
from video.sources import Frame

SIGNATURE = (64, 36)  # the tiny grey image two snapshots are compared by (frozen picture)
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


class BadImage(ValueError):
    """The camera sent something that is not a picture."""


@dataclass(frozen=True, slots=True)
class Picture:
    """Stage 1: the snapshot as stored (full JPEG and thumbnail) and the metrics of its picture."""

    full_jpeg: bytes
    thumb_jpeg: bytes
    thumb: np.ndarray  # BGR, thumb_px wide
    width: int  # of the full frame
    height: int
    brightness: float  # mean grey level, 0-255
    contrast: float  # standard deviation of the grey level
    sharpness: float  # variance of the Laplacian at thumbnail size
    signature: np.ndarray  # SIGNATURE-sized grey image

    def same_as(self, other: Picture, tolerance: float = 0.35) -> bool:
        """Practically the same picture (a frozen camera repeats its last frame, noise and all)."""
        diff = cv2.absdiff(self.signature, other.signature)
        return float(diff.mean()) <= tolerance


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the JPEG's frame header, without decoding."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    raise BadImage("JPEG without a frame header")


def picture(frame: Frame, thumb_px: int = 320, quality: int = 85) -> Picture:
    """Thumbnail and metrics of a snapshot."""
    if frame.jpeg is not None:
        full = frame.jpeg
        w, h = _jpeg_size(full)
        flag = next((f for k, f in _REDUCED if w // k >= thumb_px), cv2.IMREAD_COLOR)
        image = cv2.imdecode(np.frombuffer(full, np.uint8), flag)
        if image is None:
            raise BadImage("the JPEG could not be decoded")
    elif frame.image is not None:
        image = frame.image
        h, w = image.shape[:2]
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise BadImage("the frame could not be encoded")
        full = buf.tobytes()
    else:
        raise BadImage("empty frame")
    th = max(1, round(image.shape[0] * thumb_px / image.shape[1]))
    thumb = cv2.resize(image, (thumb_px, th), interpolation=cv2.INTER_AREA) if image.shape[1] != thumb_px else image
    ok, tbuf = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 75])
    grey = cv2.cvtColor(thumb, cv2.COLOR_BGR2GRAY)
    mean, std = cv2.meanStdDev(grey)
    sharp = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return Picture(full, tbuf.tobytes(), thumb, w, h, float(mean[0][0]), float(std[0][0]), sharp,
                   cv2.resize(grey, SIGNATURE, interpolation=cv2.INTER_AREA))


@dataclass(frozen=True, slots=True)
class Motion:
    """Stage 2: what moved since the background was learnt."""

    score: float  # % of the unmasked picture that moved
    boxes: tuple[tuple[int, int, int, int], ...]  # x, y, w, h at thumbnail size, each at least min_area_pct
    zones: tuple[str, ...]  # watched zones an object stands in (by its lowest point)
    global_change: bool  # most of the picture changed at once (lights, the infra-red switch): not an object


def _mask(polys: Sequence[Polygon], w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for poly in polys:
        cv2.fillPoly(m, [np.array([(x * (w - 1), y * (h - 1)) for x, y in poly], np.int32)], 255)
    return m


class MotionDetector:
    """Background subtraction (MOG2) on thumbnails, one per camera; masked areas (swaying canopy) are ignored
    and small blobs (leaves, noise) are not objects."""

    def __init__(self, masks: Sequence[Polygon], zones: Sequence[CameraZone], min_area_pct: float,
                 history: int = 60) -> None:
        self.masks, self.zones, self.min_area_pct = masks, zones, min_area_pct
        self.history = history
        self._mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=25, detectShadows=True)
        self._size: tuple[int, int] | None = None
        self._keep: np.ndarray = np.empty(0, np.uint8)
        self._zone_masks: list[tuple[CameraZone, np.ndarray]] = []
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.seen = 0

    def _prepare(self, w: int, h: int) -> None:
        self._size = (w, h)
        self._keep = cv2.bitwise_not(_mask(self.masks, w, h))
        self._zone_masks = [(z, _mask([z.polygon], w, h)) for z in self.zones]

    def update(self, thumb: np.ndarray) -> Motion:
        h, w = thumb.shape[:2]
        if self._size != (w, h):
            self._prepare(w, h)
            self._mog = cv2.createBackgroundSubtractorMOG2(history=self.history, varThreshold=25, detectShadows=True)
            self.seen = 0
        fg = self._mog.apply(cv2.GaussianBlur(thumb, (5, 5), 0))
        self.seen += 1
        fg = cv2.threshold(fg, 200, 255, cv2.THRESH_BINARY)[1]  # drop shadows (127)
        fg = cv2.bitwise_and(fg, self._keep)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.dilate(fg, self._kernel, iterations=2)
        area = max(1, int(cv2.countNonZero(self._keep)))
        score = 100.0 * cv2.countNonZero(fg) / area
        if self.seen < 3 or score > 50:
            # still learning, or the whole scene changed: start over from this picture rather than report it
            if score > 50:
                self._mog.apply(thumb, learningRate=1.0)
            return Motion(score, (), (), score > 50)
        min_area = self.min_area_pct / 100 * w * h
        boxes, zones = [], []
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            if cv2.contourArea(c) < min_area:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            boxes.append((x, y, bw, bh))
            foot = (min(w - 1, x + bw // 2), min(h - 1, y + bh - 1))
            zones += [z.name for z, m in self._zone_masks if m[foot[1], foot[0]] and z.name not in zones]
        return Motion(round(score, 2), tuple(boxes), tuple(zones), False)
