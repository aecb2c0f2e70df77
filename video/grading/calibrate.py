"""Pixels to millimetres: the ArUco marker of known size on the belt rail, or a configured scale.

A frame without the marker (covered, dirty, out of view) is an error, never a guess: wrong millimetres would
grade a whole lot wrong without anyone noticing.
"""

from __future__ import annotations

import cv2
import numpy as np

from video.grading.conveyor import MARKER_ID


class MarkerMissing(ValueError):
    """The calibration marker is not in the frame, and no fixed scale is configured."""

    def __init__(self) -> None:
        super().__init__("标定标记未找到：请清洁或露出传送带边框上的 ArUco 标记，或设置固定比例 "
                         "ORCHARD_GRADING__PX_PER_MM / calibration marker not found: clean or uncover the ArUco "
                         "marker on the belt rail, or set a fixed scale (--px-per-mm, ORCHARD_GRADING__PX_PER_MM)")


class Calibrator:
    def __init__(self, marker_mm: float, roi_top: float) -> None:
        self.marker_mm, self.roi_top = marker_mm, roi_top
        dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
        params = cv2.aruco.DetectorParameters()
        params.minDistanceToBorder = 1  # the rail is a narrow strip: the marker may sit close to its edge
        self.detector = cv2.aruco.ArucoDetector(dictionary, params)

    def px_per_mm(self, frame: np.ndarray) -> float:
        """The scale from the marker on the rail (above the belt); MarkerMissing when it is not there."""
        rail = frame[: max(16, int(frame.shape[0] * self.roi_top))]
        grey = cv2.cvtColor(rail, cv2.COLOR_BGR2GRAY) if rail.ndim == 3 else rail
        corners, ids, _ = self.detector.detectMarkers(grey)
        if ids is None:
            raise MarkerMissing()
        for quad, marker in zip(corners, ids.ravel(), strict=True):
            if int(marker) == MARKER_ID:
                return self._side_px(grey, quad.reshape(4, 2)) / self.marker_mm
        raise MarkerMissing()

    @staticmethod
    def _side_px(grey: np.ndarray, pts: np.ndarray) -> float:
        """The marker's side from the area of its black square (corner positions are a quarter pixel off; an
        area is not): the outer outline of the dark pixels around the detected corners, filled."""
        x0, y0 = (np.floor(pts.min(axis=0)) - 4).astype(int).clip(0)
        x1, y1 = (np.ceil(pts.max(axis=0)) + 5).astype(int)
        crop = grey[y0:y1, x0:x1]
        dark = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)[1]
        contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            sides = np.linalg.norm(pts - np.roll(pts, 1, axis=0), axis=1)
            return float(sides.mean())
        filled = np.zeros_like(dark)
        cv2.drawContours(filled, [max(contours, key=cv2.contourArea)], -1, 255, cv2.FILLED)
        return float(np.sqrt(cv2.countNonZero(filled)))
