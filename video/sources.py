"""Camera sources behind one small interface: ask for a snapshot, get the current frame or a clear refusal.

- HttpSnapshot: a JPEG snapshot URL (ONVIF cameras' snapshot URI), basic or digest auth; the JPEG is kept as is.
- CaptureSource: an RTSP or HTTP MJPEG stream, or a local video file, read by cv2.VideoCapture in a background
  thread that keeps grabbing, so a snapshot is the frame of now and not one from a buffer filled minutes ago.
  A file plays at its own frame rate, in a loop. A dropped stream is reopened with a growing pause.
- SyntheticSource (video/synthetic.py): the demo's orchard camera.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import cv2
import httpx
import numpy as np

from orchard.logs import event
from orchard.redact import hide, redact
from orchard.site import CameraConfig

log = logging.getLogger("orchard.cameras")


class CameraUnavailable(Exception):
    """No current frame: the message says why (unreachable, refused, no picture) in words for the operator."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One snapshot as a source delivers it: JPEG bytes as the camera sent them, or a decoded BGR image."""

    time_ns: int
    jpeg: bytes | None = None
    image: np.ndarray | None = None


class CameraSource(Protocol):
    def snapshot(self) -> Frame:
        """The current frame; CameraUnavailable when there is none."""

    def close(self) -> None: ...


class HttpSnapshot:
    def __init__(self, url: str, timeout_s: float, username: str | None = None, password: str | None = None,
                 auth: str = "digest") -> None:
        credentials: httpx.Auth | None = None
        if username is not None:
            credentials = (httpx.DigestAuth if auth == "digest" else httpx.BasicAuth)(username, password or "")
        self.url = url
        self.client = httpx.Client(timeout=timeout_s, auth=credentials, follow_redirects=True)

    def snapshot(self) -> Frame:
        try:
            r = self.client.get(self.url)
        except httpx.HTTPError as e:
            raise CameraUnavailable(f"无法连接摄像机 / camera unreachable: {type(e).__name__}: "
                                    f"{redact(str(e))}") from None
        if r.status_code in (401, 403):
            raise CameraUnavailable(f"摄像机拒绝登录，请检查用户名和密码 / camera refused the login (HTTP "
                                    f"{r.status_code}): check username and password_env")
        if r.status_code != 200:
            raise CameraUnavailable(f"摄像机返回错误 / camera answered HTTP {r.status_code}")
        if not r.content.startswith(b"\xff\xd8"):
            raise CameraUnavailable("摄像机返回的不是 JPEG 图片 / the snapshot URL did not return a JPEG")
        return Frame(time.time_ns(), jpeg=r.content)

    def close(self) -> None:
        self.client.close()


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


def camera_password(password_env: str | None, whose: str) -> str | None:
    """A camera's password from the environment variable the site file names (secrets live only there)."""
    password = os.environ.get(password_env) if password_env else None
    hide(password, quote(password or "", safe=""))  # never in a log line or a camera's error text
    if password_env and password is None:
        raise CameraUnavailable(f"环境变量 {password_env} 未设置 / {password_env} is not set: the password of "
                                f"{whose}")
    return password


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """RTSP and MJPEG streams take their credentials in the URL."""
    if not username:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(username, safe='')}:{quote(password or '', safe='')}@{rest}"


def open_source(cam: CameraConfig, timeout_s: float) -> CameraSource:
    """The source for a camera of the site file; its password comes from the environment variable it names."""
    password = camera_password(cam.password_env, f"camera {cam.id}")
    if cam.kind == "snapshot":
        return HttpSnapshot(cam.url, timeout_s, cam.username, password, cam.auth)
    if cam.kind == "stream":
        return CaptureSource(with_credentials(cam.url, cam.username, password), timeout_s, name=cam.id)
    if cam.kind == "file":
        return CaptureSource(cam.url.removeprefix("file://"), timeout_s, is_file=True, name=cam.id)
    from video.synthetic import SyntheticSource

    return SyntheticSource.from_config(cam)
