"""Camera sources against real servers on loopback and real video files."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from orchard.footage import Footage
from orchard.settings import CamerasSettings
from orchard.site import CameraConfig
from tests.video.camservers import CameraServer, Scene
from video.sources import CameraUnavailable, open_source
from video.sources.capture import CaptureSource
from video.sources.http import HttpSnapshot


def wait_frame(src: CaptureSource, timeout_s: float = 15) -> np.ndarray:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            frame = src.snapshot()
            assert frame.image is not None
            return frame.image
        except CameraUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def scene() -> Scene:
    return Scene()


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_snapshot_url_with_auth(scene: Scene, auth: str) -> None:
    with CameraServer(scene, auth=auth) as cam:
        good = HttpSnapshot(f"{cam.url}/snapshot.jpg", 5, "admin", "s3cret", auth)
        frame = good.snapshot()
        assert frame.jpeg is not None and frame.jpeg.startswith(b"\xff\xd8")
        assert cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (360, 640, 3)
        bad = HttpSnapshot(f"{cam.url}/snapshot.jpg", 5, "admin", "wrong", auth)
        with pytest.raises(CameraUnavailable, match="密码"):
            bad.snapshot()
        nobody = HttpSnapshot(f"{cam.url}/snapshot.jpg", 5)
        with pytest.raises(CameraUnavailable, match="401"):
            nobody.snapshot()
        for s in (good, bad, nobody):
            s.close()


def test_snapshot_url_down_and_not_a_picture(scene: Scene) -> None:
    cam = CameraServer(scene)
    url = cam.url
    missing = HttpSnapshot(f"{url}/nothing-here", 5)
    with pytest.raises(CameraUnavailable, match="404"):
        missing.snapshot()
    cam.stop()
    dead = HttpSnapshot(f"{url}/snapshot.jpg", 2)
    with pytest.raises(CameraUnavailable, match="unreachable"):
        dead.snapshot()


def test_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, scene: Scene, tmp_path: Path) -> None:
    with CameraServer(scene, auth="digest") as cam:
        cfg = CameraConfig(id="c1", plot="p01", kind="snapshot", url=f"{cam.url}/snapshot.jpg", username="admin",
                           password_env="ORCHARD_TEST_CAM_PASSWORD")
        monkeypatch.delenv("ORCHARD_TEST_CAM_PASSWORD", raising=False)
        with pytest.raises(CameraUnavailable, match="ORCHARD_TEST_CAM_PASSWORD"):
            open_source(cfg, CamerasSettings(), Footage(tmp_path))
        monkeypatch.setenv("ORCHARD_TEST_CAM_PASSWORD", "s3cret")
        src = open_source(cfg, CamerasSettings(), Footage(tmp_path))
        assert src.snapshot().jpeg
        src.close()


def test_mjpeg_snapshot_is_the_current_frame_not_a_buffered_one(scene: Scene) -> None:
    scene.mode = "numbered"
    with CameraServer(scene, fps=20) as cam:
        src = CaptureSource(f"{cam.url}/stream.mjpg", 5, name="mjpeg")
        try:
            wait_frame(src)
            time.sleep(2.0)  # 40 frames later: a reader that did not keep up would still be near the start
            image = wait_frame(src)
            sent = scene.frame_no % 250
            got = round(float(image.mean()))
            assert abs(sent - got) <= 6, (sent, got)
        finally:
            src.close()


def test_stream_that_dies_comes_back(scene: Scene) -> None:
    cam = CameraServer(scene, fps=15)
    port = cam.port
    src = CaptureSource(f"{cam.url}/stream.mjpg", 1.5, name="flaky")
    try:
        wait_frame(src)
        cam.stop()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                src.snapshot()
                time.sleep(0.2)
            except CameraUnavailable as e:
                assert "no current frame" in str(e)
                break
        else:
            pytest.fail("a dead stream kept delivering frames")
        cam = CameraServer(scene, fps=15, port=port)
        wait_frame(src, timeout_s=40)  # reopened on its own
    finally:
        src.close()
        cam.stop()


@pytest.fixture
def video_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "orchard.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 180))
    for n in range(20):  # two seconds at 10 fps; the grey level is the frame number
        out.write(np.full((180, 320, 3), 10 + n * 10, np.uint8))
    out.release()
    yield path


def test_video_file_plays_in_real_time_and_loops(video_file: Path) -> None:
    src = CaptureSource(str(video_file), 2, is_file=True, name="file")
    try:
        levels = []
        wait_frame(src)
        for _ in range(25):  # 5 s: more than twice the file's length
            levels.append(round(float(wait_frame(src).mean())))
            time.sleep(0.2)
        assert len(set(levels)) > 8  # moving on in time, not stuck on one frame
        assert any(b < a for a, b in itertools.pairwise(levels))  # went back to the start
    finally:
        src.close()


def test_missing_video_file_says_so(tmp_path: Path) -> None:
    src = CaptureSource(str(tmp_path / "gone.mp4"), 1, is_file=True, name="gone")
    try:
        time.sleep(0.3)
        with pytest.raises(CameraUnavailable, match="video file missing"):
            src.snapshot()
    finally:
        src.close()


def test_every_camera_kind_has_its_opener() -> None:
    """A camera kind of the site file is one source module in video/sources/: found without a list, none missing."""
    from orchard.site import CameraKind
    from video.sources import openers

    assert set(openers()) == set(CameraKind)
