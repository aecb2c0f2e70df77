"""The cameras service against real camera servers on loopback: snapshots on time, files and status points,
health as cameras die, freeze, go dark or blur, and intrusions at night only."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchard.models import CAMERA_MEASUREMENT, CameraStatus
from orchard.records.snapshots import Retention, SnapshotFiles
from orchard.settings import CamerasSettings, Settings
from orchard.site import CameraConfig, CameraZone, Site, site_for
from orchard.store import TimeSeriesStore
from orchard.store.writer import PointWriter
from tests.video.camservers import CameraServer, Scene
from video.service import CameraWorker
from video.sources import Frame
from video.synthetic import Intruder, SyntheticOrchard

SITE: Site = site_for(Settings())
CFG = CamerasSettings(unreachable_after=2, frozen_after=4, bad_after=2, timeout_s=1.5)
MASK = (((0.0, 0.0), (1.0, 0.0), (1.0, 0.55), (0.0, 0.55)),)
PATH = CameraZone(name="园中道路", polygon=((0.0, 0.58), (1.0, 0.58), (1.0, 1.0), (0.0, 1.0)))


def camera(cam_id: str, url: str, kind: str = "snapshot", interval_s: float = 0.25, **kw: object) -> CameraConfig:
    return CameraConfig(id=cam_id, plot="p01", kind=kind, url=url, interval_s=interval_s, masks=MASK, zones=(PATH,),
                        **kw)  # type: ignore[arg-type]


class Run:
    """Camera workers on their own threads, as the service runs them; reports kept per camera."""

    def __init__(self, tmp: Path, cams: list[CameraConfig], cfg: CamerasSettings = CFG) -> None:
        self.files = SnapshotFiles(tmp / "snapshots")
        self.reports: dict[str, list[CameraStatus]] = {c.id: [] for c in cams}
        self.workers = [CameraWorker(SITE, c, cfg, self.files, None, self.report) for c in cams]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=w.run, args=(self.stop,), daemon=True) for w in self.workers]
        self.lock = threading.Lock()

    def report(self, s: CameraStatus, _news: bool) -> None:
        with self.lock:
            self.reports[s.camera].append(s)

    def health(self, cam: str) -> str:
        with self.lock:
            return self.reports[cam][-1].health if self.reports[cam] else "none"

    def wait_for(self, cam: str, health: str, timeout_s: float = 20) -> CameraStatus:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.health(cam) == health:
                return self.reports[cam][-1]
            time.sleep(0.05)
        raise AssertionError(f"{cam} never became {health}; last: {self.health(cam)}")

    def __enter__(self) -> Run:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


@pytest.fixture
def servers() -> Iterator[Callable[..., CameraServer]]:
    started: list[CameraServer] = []

    def start(scene: Scene, **kw: object) -> CameraServer:
        s = CameraServer(scene, **kw)  # type: ignore[arg-type]
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_camera_that_dies_mid_run_and_comes_back(tmp_path: Path, servers: Callable[..., CameraServer]) -> None:
    scene = Scene()
    cam = servers(scene, auth="digest")
    port = cam.port
    cfg = camera("cam-a", f"{cam.url}/snapshot.jpg", username="admin", password_env="CAM_A_PW")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAM_A_PW", "s3cret")
        with Run(tmp_path, [cfg]) as run:
            run.wait_for("cam-a", "ok")
            time.sleep(0.6)
            cam.stop()
            down = run.wait_for("cam-a", "unreachable")
            assert "unreachable" in down.error and down.snapshot_ns is None
            time.sleep(0.6)
            assert run.reports["cam-a"][-1].since_ns == down.since_ns  # down since the same moment
            servers(scene, auth="digest", port=port)
            back = run.wait_for("cam-a", "ok")
            assert back.since_ns > down.since_ns and back.snapshot_ns is not None
    refs = run.files.between("cam-a", 0, time.time_ns() + 1)
    ok_reports = [r for r in run.reports["cam-a"] if r.snapshot_ns]
    assert len(refs) == len(ok_reports) >= 4
    assert all((run.files.root / r.thumb).is_file() for r in refs)


def test_one_dead_or_slow_camera_never_delays_the_others(tmp_path: Path,
                                                         servers: Callable[..., CameraServer]) -> None:
    healthy, slow = servers(Scene()), servers(Scene())
    slow.slow_s = 3.0  # longer than the timeout: every snapshot of it times out
    cams = [camera("cam-ok", f"{healthy.url}/snapshot.jpg", interval_s=0.2),
            camera("cam-slow", f"{slow.url}/snapshot.jpg", interval_s=0.2),
            camera("cam-dead", "http://127.0.0.1:9/snapshot.jpg", interval_s=0.2)]
    with Run(tmp_path, cams) as run:
        time.sleep(4.0)
    ok = run.reports["cam-ok"]
    assert len(ok) >= 15, len(ok)  # 4 s at 0.2 s apart: about 20, whatever the others do
    gaps = [(b.time_ns - a.time_ns) / 1e9 for a, b in itertools.pairwise(ok)]
    assert max(gaps) < 1.0
    assert run.health("cam-slow") == "unreachable" and run.health("cam-dead") == "unreachable"


@pytest.mark.parametrize(("mode", "health"), [("frozen", "frozen"), ("black", "dark"), ("blurred", "blurred")])
def test_stream_picture_trouble(tmp_path: Path, servers: Callable[..., CameraServer], mode: str, health: str) -> None:
    scene = Scene()
    server = servers(scene, fps=15)
    with Run(tmp_path, [camera("cam-s", f"{server.url}/stream.mjpg", kind="stream", interval_s=0.3)]) as run:
        run.wait_for("cam-s", "ok")
        scene.mode = mode
        bad = run.wait_for("cam-s", health)
        scene.mode = "live"
        run.wait_for("cam-s", "ok")
    assert bad.snapshot_ns is not None  # the picture that shows the trouble is kept


def test_status_points_reach_the_store(tmp_path: Path, servers: Callable[..., CameraServer],
                                       store: TimeSeriesStore) -> None:
    server = servers(Scene())
    writer = PointWriter(store)
    files = SnapshotFiles(tmp_path)
    worker = CameraWorker(SITE, camera("cam-w", f"{server.url}/snapshot.jpg"), CFG, files,
                          Retention(files, 1, 10**9, 30), lambda s, _n: writer.put(s.point()))
    taken = [worker.take() for _ in range(3)]
    server.stop()
    taken += [worker.take() for _ in range(2)]
    writer.flush()
    rows = store.range(CAMERA_MEASUREMENT, CameraStatus.FIELDS, taken[0].time_ns, taken[-1].time_ns + 1,
                       where={"camera": "cam-w"})
    back = [CameraStatus.from_values(r.tags, r.time_ns, r.values) for r in rows]
    assert [b.health for b in back] == ["ok", "ok", "ok", "ok", "unreachable"]
    assert back[0].plot == "p01" and back[0].bytes > 1000 and back[0].brightness and back[0].sharpness
    assert back[-1].error and back[-1].snapshot_ns is None and back[-1].since_ns == taken[-1].since_ns


class ClockedSource:
    """The synthetic orchard at a simulated time, 5 s on per snapshot; someone crosses in snapshots 20-27."""

    def __init__(self, start: datetime) -> None:
        self.orchard = SyntheticOrchard(9, 640, 360, intruder_nights=0)
        self.start, self.n = start, 0

    def snapshot(self) -> Frame:
        when = self.start + timedelta(seconds=5 * self.n)
        someone = Intruder("person", (self.n - 20) / 8) if 20 <= self.n < 28 else None
        self.n += 1
        return Frame(int(when.timestamp() * 1e9), image=self.orchard.render(when, someone))

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("start", "intrusions"), [
    (datetime(2026, 3, 2, 16, 0, tzinfo=UTC), True),  # midnight in Sichuan
    (datetime(2026, 3, 2, 4, 0, tzinfo=UTC), False),  # noon: someone on the path is a worker
])
def test_synthetic_intruder_detected_at_night_and_not_by_day(tmp_path: Path, start: datetime,
                                                             intrusions: bool) -> None:
    files = SnapshotFiles(tmp_path)
    worker = CameraWorker(SITE, camera("cam-n", "synthetic://9", kind="synthetic"), CFG, files, None,
                          lambda s, _n: None, ClockedSource(start))
    reports = [worker.take() for _ in range(32)]
    hits = [i for i, r in enumerate(reports) if r.intrusion]
    moving = [i for i, r in enumerate(reports) if r.objects]
    assert set(moving) >= set(range(21, 28))  # the crossing is seen either way
    if intrusions:
        assert set(hits) >= set(range(21, 28)) and set(hits) <= set(range(20, 29))
        assert all(reports[i].intrusion == "园中道路" for i in hits)
    else:
        assert hits == []


def test_service_sweep_keeps_what_alarms_hold(tmp_path: Path) -> None:
    """The service's minute sweep: size cap from the settings, evidence from the records DB."""
    from orchard.models import Signal
    from orchard.records import Records
    from orchard.records.alarms import AlarmBook
    from video.service import build

    s = Settings(data_dir=tmp_path, store_url=f"sqlite:///{tmp_path}/ts.sqlite",
                 cameras={"max_gb": 0.00005})  # type: ignore[arg-type]  # 50 kB
    files = SnapshotFiles(s.snapshot_dir)
    now = time.time_ns()
    refs = [files.write("cam-p01", now - (30 - i) * 10**9, b"\xff\xd8" + b"x" * 4000, b"\xff\xd8t") for i in range(30)]
    book = AlarmBook(Records.open(s))
    alarm, _ = book.fire(Signal(SITE.id, "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text", {},
                                "p01"), now)
    book.attach(alarm.id, refs[0], now)
    service = build(s, with_mqtt=False)
    service.sweep()
    left = {r.path for r in files.between("cam-p01", 0, now + 1)}
    assert refs[0].path in left  # the oldest, but an alarm holds it
    assert len(left) == 1 + 11 and {r.path for r in refs[-11:]} <= left  # 50 kB: the newest 11 (and the held one)
