"""Kinds "stream" and "file": an RTSP or HTTP MJPEG stream, or a local video file, read by cv2.VideoCapture in a
background thread that keeps grabbing, so a snapshot is the frame of now and not one from a buffer filled minutes
ago. A file plays at its own frame rate, in a loop. A dropped stream is reopened with a growing pause."""

from __future__ import annotations

import logging
import os
import threading
import time

import cv2
import numpy as np

from orchard.logs import event
from orchard.redact import redact
from orchard.site import CameraConfig, CameraKind
from video.sources import CameraUnavailable, Frame, Opening, opens, with_credentials

log = logging.getLogger("orchard.cameras")


class CaptureSource:
    """A stream or file read continuously by a background thread; `snapshot` returns the newest frame."""

    def __init__(self, url: str, timeout_s: float, *, is_file: bool = False, name: str = "") -> None:
        self.url, self.timeout_s, self.is_file, self.name = url, timeout_s, is_file, name or url
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._frame_ns = 0
        self._error = "尚未收到画面 / no frame received yet"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}", daemon=True)
        self._thread.start()

    def _open(self) -> cv2.VideoCapture:
        if self.is_file:
            if not os.path.exists(self.url):
                raise CameraUnavailable(f"视频文件不存在 / video file missing: {self.url}")
            return cv2.VideoCapture(self.url)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.timeout_s * 1000)]
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)

    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                cap = self._open()
            except CameraUnavailable as e:
                self._error = redact(str(e))
                self._stop.wait(pause)
                continue
            if not cap.isOpened():
                self._error = "无法打开视频流 / cannot open the stream"
                cap.release()
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
                continue
            pause = 1.0
            fps = cap.get(cv2.CAP_PROP_FPS) if self.is_file else 0.0
            step = 1.0 / fps if 0 < fps < 240 else 0.04
            event(log, "stream_open", camera=self.name)
            self._read(cap, step)
            cap.release()
            if not self._stop.is_set():
                event(log, "stream_lost", logging.WARNING, camera=self.name)
                self._stop.wait(pause)

    def _read(self, cap: cv2.VideoCapture, step: float) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok:
                if self.is_file and cap.set(cv2.CAP_PROP_POS_FRAMES, 0) and cap.read()[0]:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # played to the end: from the start again
                    continue
                self._error = "视频流中断 / the stream stopped delivering frames"
                return
            with self._lock:
                self._frame, self._frame_ns = image, time.time_ns()
            if self.is_file:  # play at the file's own speed
                next_at += step
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def snapshot(self) -> Frame:
        with self._lock:
            image, at = self._frame, self._frame_ns
        if image is None or time.time_ns() - at > self.timeout_s * 1e9:
            raise CameraUnavailable(f"没有当前画面 / no current frame: {self._error}")
        return Frame(at, image=image)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout_s + 2)


@opens(CameraKind.STREAM)
def _stream(cam: CameraConfig, how: Opening) -> CaptureSource:
    return CaptureSource(with_credentials(cam.url, cam.username, how.password), how.timeout_s, name=cam.id)


@opens(CameraKind.FILE)
def _file(cam: CameraConfig, how: Opening) -> CaptureSource:
    return CaptureSource(cam.url.removeprefix("file://"), how.timeout_s, is_file=True, name=cam.id)
