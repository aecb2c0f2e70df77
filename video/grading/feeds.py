"""Where the grading line's frames come from, behind one small interface: `next()` gives the next frame of the
belt in order, None when there is none yet (a recorded run played out), or raises CameraUnavailable.

The camera service's sources hand out the newest frame whenever asked; the grader instead needs consecutive
frames (it follows each fruit from frame to frame), so streams and files are read frame by frame here.
- SimulatorFeed: the conveyor simulator, fed with the open lot's fruit (each plot's fruit has its own size and
  defect rate, so lot reports differ); when a lot ends the belt runs empty.
- CaptureFeed: an RTSP/HTTP MJPEG stream (reopened when it drops) or a video file (read once).
- SnapshotFeed: an HTTP JPEG snapshot URL, one request per frame (slow lines only).
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from orchard.logs import event
from orchard.records.lots import Lot
from orchard.site import LineConfig
from video.grading.conveyor import Conveyor
from video.sources import CameraUnavailable, camera_password, with_credentials
from video.sources.http import HttpSnapshot

log = logging.getLogger("orchard.grading")


class FrameFeed(Protocol):
    def next(self) -> np.ndarray | None:
        """The next frame (BGR); None when none is due; CameraUnavailable when the camera cannot give one."""

    def close(self) -> None: ...


def plot_fruit(plot: str) -> tuple[float, float]:
    """(mean weight g, defect rate) of a plot's fruit in the simulator: fixed per plot, different between plots."""
    rng = np.random.default_rng(zlib.crc32(plot.encode()))
    return float(rng.uniform(84, 100)), float(rng.uniform(0.12, 0.4))


class SimulatorFeed:
    """The demo's line: while a lot is open, its plot's fruit come down the belt without end."""

    def __init__(self, seed: int, current_lot: Callable[[], Lot | None]) -> None:
        self.seed, self.current_lot = seed, current_lot
        self.conveyor: Conveyor | None = None
        self.lot_id: int | None = None
        self.n = 0

    def next(self) -> np.ndarray:
        lot = self.current_lot()
        lot_id = lot.id if lot is not None else None
        if lot_id != self.lot_id:
            if self.conveyor is not None:  # with no lot after it, what is on the belt still passes the camera
                self.conveyor.stop_feeding()
            if lot is not None:
                weight, defects = plot_fruit(lot.plot)
                self.conveyor = Conveyor(seed=self.seed * 100_003 + lot.id, mean_weight_g=weight,
                                         defect_rate=defects, forget=True)
                self.n = 0
            self.lot_id = lot_id
        if self.conveyor is None:
            self.conveyor = Conveyor(seed=self.seed, max_fruit=0, forget=True)  # an empty belt
        image, _ = self.conveyor.frame(self.n)
        self.n += 1
        return image

    def close(self) -> None:
        pass


class CaptureFeed:
    """Every frame of a stream or a file, in order."""

    def __init__(self, url: str, is_file: bool, name: str) -> None:
        self.url, self.is_file, self.name = url, is_file, name
        self.cap: cv2.VideoCapture | None = None
        self.played_out = False
        self.retry_at = 0.0
        self.pause = 1.0
        self.error = ""

    def _open(self) -> cv2.VideoCapture:
        if self.is_file and not os.path.exists(self.url):
            raise CameraUnavailable(f"视频文件不存在 / video file missing: {self.url}")
        cap = cv2.VideoCapture(self.url) if self.is_file else cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable("无法打开分选线摄像机的视频流 / cannot open the grading camera's stream")
        event(log, "line_stream_open", line=self.name)
        return cap

    def next(self) -> np.ndarray | None:
        if self.played_out:
            return None
        if self.cap is None:
            if time.monotonic() < self.retry_at:
                raise CameraUnavailable(f"{self.error}（稍后重试 / retrying soon）")
            try:
                self.cap = self._open()
                self.pause = 1.0
            except CameraUnavailable as e:
                self.error = str(e)
                self.retry_at = time.monotonic() + self.pause
                self.pause = min(self.pause * 2, 30.0)
                raise
        ok, image = self.cap.read()
        if ok:
            return image
        self.cap.release()
        self.cap = None
        if self.is_file:  # a recorded run: graded once, then the belt is empty
            self.played_out = True
            event(log, "line_file_done", line=self.name)
            return None
        raise CameraUnavailable("分选线视频流中断 / the grading camera's stream stopped")

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()


class SnapshotFeed:
    def __init__(self, source: HttpSnapshot) -> None:
        self.source = source

    def next(self) -> np.ndarray:
        frame = self.source.snapshot()
        data = np.frombuffer(frame.jpeg or b"", np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise CameraUnavailable("分选线摄像机返回的不是图片 / the grading camera did not send a picture")
        return image

    def close(self) -> None:
        self.source.close()


def open_feed(line: LineConfig, current_lot: Callable[[], Lot | None], timeout_s: float = 10) -> FrameFeed:
    password = camera_password(line.password_env, f"line {line.id}'s camera")
    if line.kind == "simulator":
        seed = line.url.removeprefix("simulator://")
        return SimulatorFeed(int(seed) if seed.isdigit() else 1, current_lot)
    if line.kind == "snapshot":
        return SnapshotFeed(HttpSnapshot(line.url, timeout_s, line.username, password))
    if line.kind == "file":
        return CaptureFeed(line.url.removeprefix("file://"), True, line.id)
    return CaptureFeed(with_credentials(line.url, line.username, password), False, line.id)
