"""Camera sources behind one small interface: ask for a snapshot, get the current frame or a clear refusal.

One module of this package per kind of source, each registering an opener for the site file's camera kinds
(`orchard.site.CameraKind`) with `@opens(kind)`; `open_source` finds them by package discovery:

- http.py, HttpSnapshot (kind "snapshot"): a JPEG snapshot URL (ONVIF cameras' snapshot URI), basic or digest
  auth; the JPEG is kept as is.
- capture.py, CaptureSource (kinds "stream", "file"): an RTSP or HTTP MJPEG stream, or a local video file, read by
  cv2.VideoCapture in a background thread that keeps grabbing, so a snapshot is the frame of now and not one from
  a buffer filled minutes ago. A file plays at its own frame rate, in a loop. A dropped stream is reopened with a
  growing pause.
- rtsp.py, RtspSource (kind "rtsp"): an IP camera's RTSP stream, copied by ffmpeg into the camera's rolling
  video buffer (video/recorder.py, orchard/footage.py) for the live view and clips; a snapshot is the newest
  segment's first frame, so the camera is connected to once.
- synthetic.py (kind "synthetic"): the demo's orchard camera (video/synthetic.py).

A new kind of source is one new module here plus its member of CameraKind; tests/video/test_sources.py fails
when a kind has no opener.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import numpy as np

from orchard.footage import Footage
from orchard.redact import hide
from orchard.registry import Registry
from orchard.settings import CamerasSettings
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
    fault: str = ""  # a fault of the stream the picture cannot show (a low frame rate), in words
    repeat: bool = False  # the same frame as the last snapshot (no newer one yet): not evidence of a frozen camera


class CameraSource(Protocol):
    def snapshot(self) -> Frame:
        """The current frame; CameraUnavailable when there is none."""

    def close(self) -> None: ...


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


@dataclass(frozen=True, slots=True)
class Opening:
    """What an opener gets besides the camera: the service's settings, the camera's password (from its
    environment variable) and the video buffers' root (kind rtsp records there)."""

    cfg: CamerasSettings
    password: str | None
    footage: Footage

    @property
    def timeout_s(self) -> float:
        return self.cfg.timeout_s


Opener = Callable[[CameraConfig, Opening], CameraSource]
OPENERS = Registry[Opener]("camera kind", __name__)
opens = OPENERS.add  # @opens(CameraKind.STREAM) on a module's opener function


def openers() -> dict[str, Opener]:
    """Every source module of this package imported (each registers its kinds), and the registry."""
    return OPENERS.load()


def open_source(cam: CameraConfig, cfg: CamerasSettings, footage: Footage) -> CameraSource:
    """The source for a camera of the site file; its password comes from the environment variable it names."""
    password = camera_password(cam.password_env, f"camera {cam.id}")
    return openers()[cam.kind](cam, Opening(cfg, password, footage))
