"""`orchard bench cameras`: how many snapshots the cameras service processes per second on one core.

Sources are 1920x1080 JPEGs of the synthetic orchard (day and night), served from memory by a source that answers
at once, so the figure is the service's own work: decode, thumbnail, metrics, motion, health, and writing both
files (CameraWorker.take, the code the service runs). The floor, in the same run and on the same core, is bare
cv2.imdecode of the same JPEGs. Medians of `repeat` runs; one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from orchard.models import CameraStatus
from orchard.records.snapshots import Retention, SnapshotFiles
from orchard.settings import CamerasSettings, Settings
from orchard.site import CameraConfig, CameraZone, Site, site_for
from video.service import CameraWorker
from video.sources import Frame
from video.synthetic import SyntheticOrchard


class MemorySource:
    """A camera that answers instantly with the next of its JPEGs."""

    def __init__(self, jpegs: list[bytes]) -> None:
        self.jpegs, self.i = jpegs, 0

    def snapshot(self) -> Frame:
        self.i += 1
        return Frame(time.time_ns(), jpeg=self.jpegs[self.i % len(self.jpegs)])

    def close(self) -> None:
        pass


def make_jpegs(count: int, width: int = 1920, height: int = 1080) -> list[bytes]:
    orchard = SyntheticOrchard(7, width, height)
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 08:00 local; every 7th an hour later, round the clock
    out = []
    for i in range(count):
        image = orchard.render(start + timedelta(hours=i * 7 % 24, seconds=i * 5))
        out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return out


def _floor(jpegs: list[bytes], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        cv2.imdecode(np.frombuffer(jpegs[i % len(jpegs)], np.uint8), cv2.IMREAD_COLOR)
    return n / (time.perf_counter() - t0)


def _pipeline(jpegs: list[bytes], n: int, cameras: int, site: Site, root: Path) -> tuple[float, list[float]]:
    cfg = CamerasSettings()
    files = SnapshotFiles(root)
    retention = Retention(files, cfg.max_days, int(cfg.max_gb * 1e9), cfg.evidence_days)
    statuses: list[CameraStatus] = []
    workers = []
    for c in range(cameras):
        cam = CameraConfig(id=f"bench-{c:03d}", plot=site.plots[0].id, kind="snapshot", url="memory://",
                           masks=(((0.0, 0.0), (1.0, 0.0), (1.0, 0.55), (0.0, 0.55)),),
                           zones=(CameraZone(name="path", polygon=((0, 0.58), (1, 0.58), (1, 1), (0, 1))),))
        mine = jpegs[c % len(jpegs):] + jpegs[:c % len(jpegs)]
        workers.append(CameraWorker(site, cam, cfg, files, retention, lambda s, _n: statuses.append(s),
                                    MemorySource(mine)))
    times = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        workers[i % cameras].take()
        times.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - t0
    assert len(statuses) == n and all(s.health != "unreachable" for s in statuses)
    return n / elapsed, times


def run_bench(*, snapshots: int, sources: int, repeat: int) -> dict[str, object]:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})  # one core, as the target says
    cv2.setNumThreads(1)
    site = site_for(Settings())
    jpegs = make_jpegs(sources)
    floors, rates, p99s, p50s = [], [], [], []
    for run in range(repeat):
        floors.append(_floor(jpegs, snapshots))
        with tempfile.TemporaryDirectory(prefix="orchard-bench-cameras-") as tmp:
            rate, times = _pipeline(jpegs, snapshots, sources, site, Path(tmp))
        rates.append(rate)
        times.sort()
        p99s.append(times[min(len(times) - 1, int(len(times) * 0.99))])
        p50s.append(times[len(times) // 2])
        print(f"run {run + 1}/{repeat}: floor {floors[-1]:.0f} decodes/s, service {rate:.0f} snapshots/s, "
              f"p99 {p99s[-1]:.1f} ms", flush=True)
    result: dict[str, object] = {
        "bench": "cameras",
        "frame": "1920x1080 JPEG q85",
        "snapshots": snapshots,
        "cameras": sources,
        "runs": repeat,
        "snapshots_per_s": round(statistics.median(rates), 1),
        "p50_ms": round(statistics.median(p50s), 1),
        "p99_ms": round(statistics.median(p99s), 1),
        "floor_decode_per_s": round(statistics.median(floors), 1),
        "ratio_to_floor": round(statistics.median(rates) / statistics.median(floors), 2),
        "jpeg_kb": round(sum(len(j) for j in jpegs) / len(jpegs) / 1024, 1),
        "target": {"snapshots_per_s": 20, "p99_ms": 100},
    }
    print(json.dumps(result), flush=True)
    return result
