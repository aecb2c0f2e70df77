"""One ffmpeg per rtsp camera: the camera's stream copied, not re-encoded, into its rolling buffer (orchard/footage.py).

This is the one connection the project keeps to such a camera; the live view, the clips around events and the
snapshots are all read from the buffer it writes. ffmpeg reports its progress on stdout (`-progress pipe:1`,
once a second), which gives the frames delivered and so the stream's health:

- stalled: no new frame for `stall_after_s` (the camera or its network hangs without closing the connection);
  ffmpeg is stopped and started again, as it is whenever it exits (camera rebooted, refused, unreachable), with
  a pause that grows from 1 s to 30 s while it keeps failing;
- low frame rate: frames over the last `fps_window_s` below `low_fps_share` of the rate the stream declares
  (a camera whose uplink or encoder cannot keep up).

ffmpeg's own error lines are kept (the last few) to say why a stream is down; the camera's password, which is in
the URL ffmpeg is given, is masked (orchard.redact) before any of it is logged or shown.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from orchard.footage import PLAYLIST, SEGMENT, Footage
from orchard.logs import event
from orchard.redact import redact
from orchard.settings import CamerasSettings

log = logging.getLogger("orchard.cameras")
_FPS = re.compile(r"Video: .*?(\d+(?:\.\d+)?) (?:fps|tbr)")
HLS_FLAGS = ("delete_segments", "program_date_time", "independent_segments", "temp_file", "append_list",
             "discont_start", "omit_endlist", "second_level_segment_index")


def first_frame(segment: Path) -> np.ndarray | None:
    """A segment's first frame (its keyframe: one decode), or None when it cannot be read."""
    cap = cv2.VideoCapture(str(segment), cv2.CAP_FFMPEG)
    try:
        ok, image = cap.read()
    finally:
        cap.release()
    return image if ok and image is not None else None


def ffmpeg_args(ffmpeg: str, url: str, folder: Path, cfg: CamerasSettings) -> list[str]:
    """The command that copies `url` into the buffer folder (documented flag by flag in docs/video.md)."""
    keep = max(3, math.ceil(cfg.buffer_s / cfg.segment_s))
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "info", "-nostats", "-progress", "pipe:1",
            "-stats_period", "1", "-rtsp_transport", "tcp", "-timeout", str(int(cfg.stall_after_s * 1e6)),
            "-i", url, "-map", "0:v:0", "-c", "copy", "-f", "hls", "-hls_time", f"{cfg.segment_s:g}",
            "-hls_list_size", str(keep), "-strftime", "1", "-hls_flags", "+".join(HLS_FLAGS),
            "-hls_segment_filename", str(folder / "seg-%s-%%04d.ts"), str(folder / PLAYLIST)]


@dataclass(frozen=True, slots=True)
class StreamState:
    """What the recorder knows of its stream now (stage 1 of an rtsp camera's snapshot)."""

    running: bool  # ffmpeg is up
    frames: int  # frames delivered since ffmpeg last started
    fps: float | None  # frames per second over the last fps_window_s (None until the window has filled)
    declared_fps: float | None  # what the stream says it sends
    idle_s: float | None  # seconds since the last new frame (None before the first)
    error: str  # why the stream is down, in words, password masked
    restarts: int
    started_ns: int  # wall clock when the running ffmpeg started (segments older than that are an earlier run's)

    def fault(self, cfg: CamerasSettings) -> str:
        """'' when healthy, else what is wrong: down (ffmpeg not running: refused, unreachable, ended), stalled
        (no new frame for stall_after_s) or low_fps."""
        if not self.running:
            return "down"
        if self.idle_s is None or self.idle_s > cfg.stall_after_s:
            return "stalled"
        if self.fps is not None and self.declared_fps and self.fps < cfg.low_fps_share * self.declared_fps:
            return "low_fps"
        return ""


class Recorder:
    """Keeps one ffmpeg copying a camera's stream into its buffer folder, restarting it when it ends or stalls."""

    def __init__(self, camera: str, url: str, footage: Footage, cfg: CamerasSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.camera, self.url, self.footage, self.cfg, self.clock = camera, url, footage, cfg, clock
        self.folder = footage.folder(camera)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._frames = 0
        self._history: collections.deque[tuple[float, int]] = collections.deque()  # (clock, frames)
        self._last_new: float | None = None
        self._declared: float | None = None
        self._errors: collections.deque[str] = collections.deque(maxlen=8)
        self._error = "尚未连接 / not connected yet"
        self._started_ns = 0
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.camera}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            started = self.clock()
            self._once()
            if self._stop.is_set():
                break
            with self._lock:
                delivered = self._frames
                self.restarts += 1
            pause = 1.0 if delivered and self.clock() - started > 30 else min(pause * 2, 30.0)
            event(log, "stream_lost", logging.WARNING, camera=self.camera, error=self._error, retry_s=pause)
            self._stop.wait(pause)

    def _once(self) -> None:
        args = ffmpeg_args(self.cfg.ffmpeg, self.url, self.folder, self.cfg)
        try:
            # In the service's own process group: whatever stops the service's group (Ctrl-C, the demo, a
            # container's stop) stops its ffmpegs too, even when the service itself cannot say so any more.
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            self._error = f"无法启动 ffmpeg / cannot start ffmpeg ({self.cfg.ffmpeg}): {e.strerror}"
            return
        with self._lock:
            self._proc, self._frames, self._last_new, self._declared = proc, 0, None, None
            self._started_ns = time.time_ns()
            self._history.clear()
        readers = [threading.Thread(target=self._progress, args=(proc,), daemon=True),
                   threading.Thread(target=self._stderr, args=(proc,), daemon=True)]
        for t in readers:
            t.start()
        event(log, "stream_started", camera=self.camera, pid=proc.pid)
        opened = self.clock()
        while proc.poll() is None and not self._stop.wait(0.25):
            with self._lock:
                last = self._last_new
            idle = self.clock() - (last if last is not None else opened)
            if idle > self.cfg.stall_after_s:
                self._error = f"视频流停滞 {idle:.0f} 秒 / the stream stalled: no frame for {idle:.0f} s"
                break
        self._end(proc)
        for t in readers:
            t.join(2)
        if proc.returncode not in (0, None) and not self._error.startswith("视频流停滞") and not self._stop.is_set():
            self._error = self._why()
        with self._lock:
            self._proc = None

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _progress(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("frame="):
                continue
            with contextlib.suppress(ValueError):
                frames = int(line[6:])
                now = self.clock()
                with self._lock:
                    if frames > self._frames:
                        self._last_new = now
                        self._error = ""
                    self._frames = frames
                    self._history.append((now, frames))
                    while self._history and now - self._history[0][0] > self.cfg.fps_window_s + 1.5:
                        self._history.popleft()

    def _stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = redact(raw.decode(errors="replace").strip())
            if not line or "Opening '" in line:
                continue
            if self._declared is None and (m := _FPS.search(line)):
                self._declared = float(m.group(1))
            if "error" in line.lower() or "failed" in line.lower() or "refused" in line.lower() or (
                    "timed out" in line.lower() or "401" in line or "404" in line):
                self._errors.append(line[-300:])

    def _why(self) -> str:
        last = " | ".join(list(self._errors)[-2:])
        if "401" in last or "Unauthorized" in last:
            return f"摄像机拒绝登录，请检查用户名和密码 / the camera refused the login: {last}"
        if "404" in last or "Not Found" in last:
            return f"摄像机没有这个码流地址，请检查 URL / no such stream path on the camera: {last}"
        if "refused" in last.lower():
            return f"无法连接摄像机 / connection refused: {last}"
        return f"视频流中断 / the stream ended: {last or 'ffmpeg exited'}"

    def stop(self) -> None:
        """Ends ffmpeg (its loop sends the one SIGTERM: a second one makes ffmpeg exit at once, possibly in the
        middle of rewriting its playlist, which then is empty) and waits for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    # -- what it says -----------------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The running ffmpeg's process id (for the benchmark's CPU count)."""
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    def state(self) -> StreamState:
        now = self.clock()
        with self._lock:
            hist = list(self._history)
            fps = None
            if hist and now - hist[0][0] >= self.cfg.fps_window_s * 0.8 and len(hist) >= 2:
                (t0, f0), (t1, f1) = hist[0], hist[-1]
                fps = (f1 - f0) / (t1 - t0) if t1 > t0 else None
            idle = None if self._last_new is None else now - self._last_new
            return StreamState(self._proc is not None and self._proc.poll() is None, self._frames,
                               None if fps is None else round(fps, 1), self._declared, idle, self._error,
                               self.restarts, self._started_ns)

    def prune(self, now_s: float | None = None) -> int:
        """Delete segments left behind by an earlier ffmpeg (not in the playlist, older than the buffer)."""
        now_s = time.time() if now_s is None else now_s
        listed = {s.name for s in self.footage.segments(self.camera)}
        gone = 0
        for p in self.folder.glob("seg-*.ts"):
            if SEGMENT.match(p.name) and p.name not in listed:
                with contextlib.suppress(FileNotFoundError):
                    if now_s - p.stat().st_mtime > self.cfg.buffer_s + 60:
                        p.unlink()
                        gone += 1
        return gone
