"""`orchard bench video`: how many rtsp cameras one core keeps buffered, and how far the live view lags.

A real RTSP server (Debian's GStreamer RTSP server, bench/rtsp_server.py) publishes `cameras` H.264 streams on
loopback. In the same run and the same machine:

- baseline: one bare ffmpeg per stream with the very command the recorder runs (video/recorder.py ffmpeg_args,
  without its progress report), copying into an HLS buffer;
- ours: the project's Recorder per stream (ffmpeg plus the Python that reads its progress, watches for stalls
  and frame-rate drops).

Each runs for `seconds`, `repeat` times, alternating; the CPU they use (ffmpeg children from /proc, plus this
process for ours) gives % of a core per camera and so cameras per core. The RTSP server's encoders also run
on this machine throughout (they stand in for the cameras) and are counted apart.

Live delay: one more stream carries its frame number as a pattern of squares (bench/feed.py FrameFeed); when a
new segment appears in the playlist its last frame is decoded and its number read, which says when that frame
was drawn: the wait = seen - drawn (encode, RTSP, ffmpeg, cutting the segment), for the segment's first frame
(the longest wait) and its last (the shortest). A player stays PLAYER_HOLD_S behind the newest segment's end
(hls.js liveSyncDuration, dashboard/media.py), so the live view's expected delay adds that and half a segment;
the browser test (tests/integration/test_live_video.py) reads hls.js's own figure.
Medians and 90th percentiles; one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.feed import FrameFeed
from bench.servers import RtspServer
from dashboard.media import LIVE_SYNC_S
from orchard.footage import Footage
from orchard.settings import CamerasSettings
from video.recorder import Recorder, ffmpeg_args

BITS = 16
W, H = 640, 360
PLAYER_HOLD_S = LIVE_SYNC_S  # how far behind the newest segment's end the player stays (dashboard/media.py)


def coded(n: int) -> np.ndarray:
    """A frame whose number is written as 16 black or white squares along the top, over a moving picture."""
    img = np.full((H, W, 3), 90, np.uint8)
    cv2.circle(img, (40 + (n * 9) % 560, 240), 40, (0, 200, 255), -1)
    for b in range(BITS):
        if n >> b & 1:
            img[8:48, 8 + b * 39:8 + b * 39 + 32] = 255
        else:
            img[8:48, 8 + b * 39:8 + b * 39 + 32] = 0
    return img


def read_code(img: np.ndarray) -> int:
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return sum(1 << b for b in range(BITS) if grey[16:40, 16 + b * 39:16 + b * 39 + 16].mean() > 128)


def _cpu_s(pids: list[int], precise: bool = True) -> float:
    """CPU seconds these processes have run so far. Precise: the scheduler's own nanoseconds of each live thread
    (/proc/<pid>/task/<tid>/schedstat; threads that ended are not counted). Else, or where the kernel has no
    schedstat: the process's clock ticks (/proc/<pid>/stat, ended threads included, in 10 ms steps: too coarse
    for a short run)."""
    total = 0.0
    for pid in pids:
        tasks = list(Path(f"/proc/{pid}/task").glob("*/schedstat")) if precise else []
        if tasks:
            for t in tasks:
                try:
                    total += int(t.read_text().split()[0]) / 1e9
                except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                    continue
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _own_cpu_s() -> float:
    return _cpu_s([os.getpid()])


def _bare(server: RtspServer, mounts: list[str], folder: Path, cfg: CamerasSettings, seconds: float) -> float:
    """% of a core per camera for bare ffmpeg (the recorder's command without its progress report)."""
    procs = []
    for m in mounts:
        (folder / m).mkdir(parents=True, exist_ok=True)
        args = [a for a in ffmpeg_args(cfg.ffmpeg, server.url(m), folder / m, cfg)]
        i = args.index("-progress")
        del args[i:i + 4]  # -progress pipe:1 -stats_period 1
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(3)  # connected and past the opening burst
    pids = [p.pid for p in procs]
    c0, t0 = _cpu_s(pids), time.monotonic()
    time.sleep(seconds)
    used, wall = _cpu_s(pids) - c0, time.monotonic() - t0
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(10)
    return 100 * used / wall / len(mounts)


def _ours(server: RtspServer, mounts: list[str], folder: Path, cfg: CamerasSettings, seconds: float) -> float:
    footage = Footage(folder)
    recs = [Recorder(m, server.url(m), footage, cfg) for m in mounts]
    for r in recs:
        r.start()
    time.sleep(3)
    pids = [pid for r in recs if (pid := r.pid()) is not None]
    c0, o0, t0 = _cpu_s(pids), _own_cpu_s(), time.monotonic()
    time.sleep(seconds)
    used, wall = _cpu_s(pids) - c0 + _own_cpu_s() - o0, time.monotonic() - t0
    for r in recs:
        r.stop()
    assert all(r.state().frames == 0 or r.restarts == 0 for r in recs), "a stream restarted during the bench"
    return 100 * used / wall / len(mounts)


def _delays(server: RtspServer, feed: FrameFeed, folder: Path, cfg: CamerasSettings, seconds: float
            ) -> tuple[list[float], list[float]]:
    """Seconds from drawing a frame to its segment appearing in the playlist, for the first frame of each segment
    (which waits the longest: the whole segment) and the last (which waits the least)."""
    footage = Footage(folder)
    rec = Recorder("coded", server.url("coded"), footage, cfg)
    rec.start()
    seen: set[str] = set()
    first: list[float] = []
    last: list[float] = []
    deadline = time.monotonic() + seconds + 5
    while time.monotonic() < deadline:
        for s in footage.segments("coded"):
            if s.name in seen:
                continue
            seen.add(s.name)
            at = time.time()
            if len(seen) <= 2:
                continue  # the connection's opening burst is not the steady state
            cap = cv2.VideoCapture(str(folder / "coded" / s.name))
            frames = []
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                frames.append(img)
            cap.release()
            for img, out in ((frames[0], first), (frames[-1], last)) if frames else ():
                drawn = feed.drawn_at.get(read_code(img))
                if drawn is not None:
                    out.append(at - drawn)
        time.sleep(0.05)
    rec.stop()
    return first, last


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else float("nan")


def _p90(xs: list[float]) -> float:
    return round(sorted(xs)[int(0.9 * (len(xs) - 1))], 2) if xs else float("nan")


def run_bench(cameras: int = 8, seconds: float = 20, repeat: int = 3, delay_seconds: float = 30,
              work_dir: Path | None = None) -> dict[str, object]:
    base = Path(work_dir or tempfile.mkdtemp(prefix="orchard-bench-video-"))
    cfg = CamerasSettings(buffer_s=30, segment_s=1)
    feed = FrameFeed(coded, W, H, fps=15).start()
    mounts = [f"cam{i}" for i in range(cameras)]
    server = RtspServer(base / "rtsp", {**{m: "test" for m in mounts}, "coded": feed.spec}, fps=15, gop=15,
                        size=(W, H))
    server.start()
    try:
        # Every stream's shared encoder starts with its first client: warm them all up once.
        _bare(server, mounts, base / "warm", cfg, 2)
        # The server's pipelines start and stop threads with their clients: its process-wide ticks count them all.
        server_c0, server_t0 = _cpu_s([server.proc.pid], False) if server.proc else 0.0, time.monotonic()
        bare, ours = [], []
        for i in range(repeat):
            bare.append(_bare(server, mounts, base / f"bare{i}", cfg, seconds))
            ours.append(_ours(server, mounts, base / f"ours{i}", cfg, seconds))
            print(f"round {i + 1}/{repeat}: bare {bare[-1]:.2f} %, ours {ours[-1]:.2f} % of a core per camera",
                  flush=True)
        server_pct = 100 * (_cpu_s([server.proc.pid], False) - server_c0) / (time.monotonic() - server_t0) if (
            server.proc) else 0.0
        first, last = _delays(server, feed, base / "delay", cfg, delay_seconds)
    finally:
        server.stop()
        feed.close()
    b, o = statistics.median(bare), statistics.median(ours)
    seg = cfg.segment_s
    result: dict[str, object] = {
        "bench": "video", "cameras": cameras, "stream": f"H.264 {W}x{H} 15 fps, keyframe every 1 s, 600 kbit/s",
        "seconds": seconds, "repeat": repeat, "cores": os.cpu_count(),
        "bare_ffmpeg_core_pct_per_camera": round(b, 2), "ours_core_pct_per_camera": round(o, 2),
        "ours_over_bare": round(o / b, 2) if b else None,
        "cameras_per_core_ours": round(100 / o) if o else None,
        "cameras_per_core_bare": round(100 / b) if b else None,
        "rtsp_server_core_pct": round(server_pct, 1),
        "segments_timed": len(last),
        "frame_wait_s_first_of_segment_median": _median(first), "frame_wait_s_first_of_segment_p90": _p90(first),
        "frame_wait_s_last_of_segment_median": _median(last), "frame_wait_s_last_of_segment_p90": _p90(last),
        # A player PLAYER_HOLD_S behind the newest segment's end, which is on average half a segment old.
        "live_view_delay_s_expected": round(_median(last) + PLAYER_HOLD_S + 0.5 * seg, 2) if last else None,
        "runs_bare": [round(x, 2) for x in bare], "runs_ours": [round(x, 2) for x in ours],
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result

