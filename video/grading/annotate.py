"""The last annotated frame the dashboard shows: every fruit's outline box with its size, defects marked."""

from __future__ import annotations

import cv2
import numpy as np

from video.grading.results import FrameResult

GREEN, ORANGE, WHITE = (80, 200, 80), (0, 140, 255), (255, 255, 255)


def annotate(image: np.ndarray, frame: FrameResult | None, header: str, width: int = 960) -> bytes:
    """A JPEG of the frame, scaled to `width`, with a box per fruit (orange: a defect shows) and a header line
    (ASCII: OpenCV's fonts have no Chinese; the page around it says the rest)."""
    out = image.copy()
    if frame is not None:
        for v in frame.fruit:
            x, y, w, h = v.box
            colour = ORANGE if v.defects else GREEN
            cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
            if not v.touches_edge:
                cv2.putText(out, f"{v.length_mm:.0f}x{v.width_mm:.0f}", (x, max(12, y - 4)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    scale = width / out.shape[1]
    if scale < 1:
        out = cv2.resize(out, (width, round(out.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, (0, 0), (out.shape[1], 26), (30, 30, 30), -1)
    cv2.putText(out, header, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, WHITE, 1, cv2.LINE_AA)
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("could not encode the annotated frame")
    return jpeg.tobytes()
