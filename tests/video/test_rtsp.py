"""Kind rtsp against a real RTSP server (Debian's GStreamer RTSP server publishing H.264 on loopback): ffmpeg's
rolling buffer, snapshots from it, and the stream's health as the camera dies, comes back, slows or freezes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.feed import FrameFeed
from bench.servers import RtspServer
from orchard.footage import Footage
from orchard.settings import CamerasSettings
from tests.video.test_service import Run, camera

pytestmark = pytest.mark.integration
CFG = CamerasSettings(unreachable_after=1, frozen_after=3, bad_after=2, timeout_s=3, buffer_s=20, stall_after_s=4,
                      fps_window_s=3)
Rtsp = Callable[..., RtspServer]


def ball(n: int) -> np.ndarray:
    """A moving picture a camera might see: a bright ball crossing a textured field."""
    img = np.full((360, 640, 3), 60, np.uint8)
    img[::8, :] = 120
    cv2.circle(img, (40 + (n * 9) % 560, 180), 40, (0, 200, 255), -1)
    return img


def still(_n: int) -> np.ndarray:
    return ball(0)


@contextlib.contextmanager
def fed_camera(tmp_path: Path, rtsp: Rtsp, draw: Callable[[int], np.ndarray], cam_id: str,
               interval_s: float = 0.5) -> Iterator[tuple[FrameFeed, Run]]:
    """A camera whose frames this test draws (a FrameFeed behind the RTSP server), run by a camera worker."""
    feed = FrameFeed(draw, fps=15).start()
    try:
        server = rtsp({"cam": feed.spec}, fps=15)
        with Run(tmp_path, [camera(cam_id, server.url("cam"), kind="rtsp", interval_s=interval_s)], CFG) as run:
            yield feed, run
    finally:
        feed.close()


def test_snapshots_come_from_the_buffer_of_one_connection(tmp_path: Path, rtsp: Rtsp) -> None:
    server = rtsp({"main": "test"})
    cam = camera("cam-r", server.url("main"), kind="rtsp", interval_s=0.5)
    with Run(tmp_path, [cam], CFG) as run:
        run.wait_for("cam-r", "ok", 30)
        deadline = time.monotonic() + 20
        while len(pictures := [r for r in run.reports["cam-r"] if r.bytes]) < 2:
            assert time.monotonic() < deadline, run.reports["cam-r"][-3:]
            time.sleep(0.1)
        repeats = [r for r in run.reports["cam-r"] if not r.bytes and r.health == "ok"]
    first, second = pictures[:2]
    assert second.snapshot_ns > first.snapshot_ns  # type: ignore[operator]  # a newer segment, a newer picture
    # Snapshots between two segments repeat the last picture: reported (pointing at it), not stored again.
    assert repeats and all(r.snapshot_ns in {p.snapshot_ns for p in pictures} for r in repeats)
    a, b = (cv2.imread(str(run.files.root / run.files.ref("cam-r", s.snapshot_ns).path))  # type: ignore[arg-type]
            for s in (first, second))
    assert a.shape == (360, 640, 3) and float(np.abs(a.astype(int) - b.astype(int)).mean()) > 0.5  # it moved
    segments = Footage(tmp_path / "video").segments("cam-r")
    assert len(segments) >= 2 and all(s.duration_s <= 2.5 for s in segments)
    assert [s.start_ns for s in segments] == sorted(s.start_ns for s in segments)
    assert abs(segments[-1].end_ns - time.time_ns()) < 5e9  # wall-clock times, not the stream's
    sessions = server.log.read_text()
    assert sessions.count("ready") == 1


def test_a_camera_that_dies_is_unreachable_with_its_reason_then_recovers(tmp_path: Path, rtsp: Rtsp) -> None:
    server = rtsp({"main": "test"})
    cam = camera("cam-d", server.url("main"), kind="rtsp", interval_s=0.5)
    with Run(tmp_path, [cam], CFG) as run:
        run.wait_for("cam-d", "ok", 30)
        server.stop()
        down = run.wait_for("cam-d", "unreachable", 30)
        assert down.snapshot_ns is None and ("stalled" in down.error or "refused" in down.error
                                             or "ended" in down.error), down.error
        server.start()  # the same port: the camera rebooted
        back = run.wait_for("cam-d", "ok", 60)
        assert back.since_ns > down.since_ns and back.snapshot_ns is not None


def test_a_stream_that_slows_down_is_a_low_frame_rate_fault(tmp_path: Path, rtsp: Rtsp) -> None:
    with fed_camera(tmp_path, rtsp, ball, "cam-s") as (feed, run):
        run.wait_for("cam-s", "ok", 30)
        time.sleep(CFG.fps_window_s + 1)
        assert run.health("cam-s") == "ok"  # a full window at the declared rate is no fault
        feed.fps = 3
        slow = run.wait_for("cam-s", "low_fps", 30)
        assert "15" in slow.error and "fps" in slow.error
        feed.fps = 15
        run.wait_for("cam-s", "ok", 30)


def test_a_stream_that_hangs_open_is_stalled_then_restarted(tmp_path: Path, rtsp: Rtsp) -> None:
    """The camera keeps the connection but sends nothing (a hung encoder): no socket error ever comes, so the
    recorder itself must notice, say so and reconnect."""
    with fed_camera(tmp_path, rtsp, ball, "cam-h") as (feed, run):
        run.wait_for("cam-h", "ok", 30)
        feed.paused = True
        hung = run.wait_for("cam-h", "unreachable", 30)
        assert "stalled" in hung.error, hung.error
        feed.paused = False
        run.wait_for("cam-h", "ok", 60)
        recorder = run.workers[0].source.recorder  # type: ignore[union-attr]
        assert recorder.restarts >= 1  # it reconnected rather than waiting on the open socket


def test_a_stream_of_one_unchanging_picture_is_frozen(tmp_path: Path, rtsp: Rtsp) -> None:
    with fed_camera(tmp_path, rtsp, still, "cam-f", interval_s=0.3) as (_feed, run):
        run.wait_for("cam-f", "frozen", 40)


def test_digest_login_and_a_wrong_password_said_without_showing_it(tmp_path: Path, rtsp: Rtsp,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server = rtsp({"main": "test"}, user="admin", password="Orchard#2026")
    good = camera("cam-g", server.url("main"), kind="rtsp", interval_s=0.5, username="admin", password_env="CAM_G_PW")
    bad = camera("cam-b", server.url("main"), kind="rtsp", interval_s=0.5, username="admin", password_env="CAM_B_PW")
    monkeypatch.setenv("CAM_G_PW", "Orchard#2026")
    monkeypatch.setenv("CAM_B_PW", "wrong-pass-77")
    with Run(tmp_path, [good, bad], CFG) as run:
        run.wait_for("cam-g", "ok", 30)
        deadline = time.monotonic() + 30
        while "login" not in run.reports["cam-b"][-1].error if run.reports["cam-b"] else True:
            assert time.monotonic() < deadline, run.reports["cam-b"][-1:] or "no report"
            time.sleep(0.1)
        refused = run.reports["cam-b"][-1]
    assert refused.health == "unreachable"
    assert "wrong-pass-77" not in refused.error and "Orchard#2026" not in refused.error
