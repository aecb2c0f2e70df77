"""The grading service: frames from the simulator, a recorded file or a broken camera; every fruit booked to the
lot open on its line (and the last fruit of an ended lot to that lot); per-fruit points, per-minute aggregates
and lot totals that agree; the lot commands of the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import app
from orchard.models import FRUIT_FIELDS, FRUIT_MEASUREMENT, LINE_MEASUREMENT, LineMinute
from orchard.records import Records
from orchard.records.lots import Lots
from orchard.settings import GradingSettings, Settings
from orchard.site import SHIPPED, LineConfig, Site, load_site
from orchard.store import TimeSeriesStore, open_store
from orchard.store.writer import PointWriter
from tests.video.camservers import CameraServer, Scene
from video.grading.conveyor import Conveyor
from video.grading.service import LineWorker, build

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
CFG = GradingSettings()
NS = 10**9
T0 = 1_790_000_000 * NS  # a minute boundary


class Clock:
    """Simulated time: each frame half a second after the last."""

    def __init__(self, step_s: float = 0.5) -> None:
        self.now, self.step = T0, int(step_s * NS)

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Records]:
    r = Records(f"sqlite:///{tmp_path}/records.sqlite")
    yield r
    r.close()


def worker(site: Site, line: LineConfig, rec: Records, store: TimeSeriesStore, tmp_path: Path,
           clock: Clock) -> LineWorker:
    return LineWorker(site, line, CFG, Lots(rec, site), PointWriter(store), tmp_path / "frame.jpg", clock=clock,
                      lot_check_s=0, frame_every_s=0)


def fruit_rows(store: TimeSeriesStore) -> list[dict[str, str]]:
    return [dict(r.tags) for r in store.range(FRUIT_MEASUREMENT, FRUIT_FIELDS, 0, time.time_ns() + 3600 * NS)]


def minute_rows(store: TimeSeriesStore) -> list[LineMinute]:
    return [LineMinute.from_values(r.tags, r.time_ns, r.values)
            for r in store.range(LINE_MEASUREMENT, LineMinute.FIELDS, 0, time.time_ns() + 3600 * NS)]


def test_fruit_are_booked_to_the_open_lot_and_the_totals_agree(store: TimeSeriesStore, rec: Records,
                                                               tmp_path: Path) -> None:
    clock = Clock()
    w = worker(SITE, SITE.line("line-1"), rec, store, tmp_path, clock)
    lots = Lots(rec, SITE)
    for _ in range(10):  # no lot open: the belt runs empty, the minute still reports
        assert w.step() == []
    first = lots.start("line-1", "p01", "tester", now_ns=clock.now)
    graded_first = sum(len(w.step()) for _ in range(60))
    lots.end(first.id, "tester", clock.now)
    tail = 0
    while w.tail is not None or w.lot is not None:  # the fruit still on the belt run out
        tail += len(w.step())
    assert 0 < tail < 70  # what was on the belt: a frame full and the bit upstream
    second = lots.start("line-1", "p06", "tester", now_ns=clock.now)
    graded_second = sum(len(w.step()) for _ in range(40))
    w.finish()
    w.writer.flush()

    one, two = lots.get(first.id), lots.get(second.id)
    assert one.fruit == graded_first + tail > 100 and two.fruit >= graded_second > 40
    assert one.grower == "王建国" and two.grower == "杨光荣"
    rows = fruit_rows(store)
    assert len(rows) == one.fruit + two.fruit  # every fruit a point, booked once
    assert sum(1 for r in rows if r["lot"] == str(first.id) and r["plot"] == "p01") == one.fruit
    assert sum(1 for r in rows if r["lot"] == str(second.id) and r["plot"] == "p06") == two.fruit
    minutes = minute_rows(store)
    assert sum(m.fruit for m in minutes if m.lot == str(first.id)) == one.fruit
    assert sum(m.fruit for m in minutes if m.lot == str(second.id)) == two.fruit
    assert sum(sum(m.grades.values()) for m in minutes) == one.fruit + two.fruit
    assert sum(m.rejected for m in minutes if m.lot == str(first.id)) == one.by_grade()["reject"]
    assert any(m.lot == "" and m.frames >= 10 and m.fruit == 0 for m in minutes)  # the empty belt's heartbeat
    assert sum(one.by_grade().values()) == one.fruit and sum(one.reasons.values()) == one.by_grade()["reject"]
    assert 80 < one.mean_weight_g < 110 and 50 < one.packout_pct <= 100
    assert (tmp_path / "frame.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_a_recorded_run_is_graded_once(tmp_path: Path, rec: Records) -> None:
    conveyor = Conveyor(seed=5, max_fruit=60)
    path = tmp_path / "run.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (conveyor.width, conveyor.height))
    for n in range(conveyor.frames_to_empty()):
        out.write(conveyor.frame(n)[0])
    out.release()
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    line = LineConfig(id="line-f", kind="file", url=str(path))
    site = SITE.model_copy(update={"lines": (line,)})
    w = worker(site, line, rec, store, tmp_path, Clock())
    lot = Lots(rec, site).start("line-f", "p02", "tester")
    graded = sum(len(w.step()) for _ in range(conveyor.frames_to_empty() + 5))
    assert abs(graded - 60) <= 1  # counted once each across all the frames that showed it
    assert w.step() == [] and w.fault == ""  # played out: an idle belt, not a fault
    w.finish()
    assert Lots(rec, site).get(lot.id).fruit == graded


@pytest.mark.parametrize(("line", "fault"), [
    (LineConfig(id="line-x", kind="file", url="/nonexistent/run.avi"), "视频文件不存在"),
    (LineConfig(id="line-x", kind="stream", url="rtsp://127.0.0.1:9/belt"), "无法打开"),
    (LineConfig(id="line-x", kind="stream", url="rtsp://127.0.0.1:9/belt", username="u", password_env="NO_SUCH_VAR"),
     "NO_SUCH_VAR"),
])
def test_a_camera_that_gives_no_frame_is_a_fault_not_a_crash(line: LineConfig, fault: str, tmp_path: Path,
                                                             rec: Records) -> None:
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    site = SITE.model_copy(update={"lines": (line,)})
    w = worker(site, line, rec, store, tmp_path, Clock(30))
    for _ in range(5):
        assert w.step() == []
    assert fault in w.fault
    w.finish()
    w.writer.flush()
    minutes = minute_rows(store)  # half a minute per attempt: three minutes of reports
    assert len(minutes) >= 2 and sum(m.errors for m in minutes) == 5 and not any(m.frames for m in minutes)


class NoMarker:
    """The simulator's belt with the calibration marker covered, then uncovered."""

    def __init__(self) -> None:
        self.covered = Conveyor(seed=3, marker=False)
        self.clear = Conveyor(seed=3)
        self.n = 0
        self.hide = True

    def next(self) -> np.ndarray:
        self.n += 1
        return (self.covered if self.hide else self.clear).frame(self.n)[0]

    def close(self) -> None:
        pass


def test_a_covered_marker_stops_grading_with_a_clear_reason(rec: Records, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    w = worker(SITE, SITE.line("line-1"), rec, store, tmp_path, Clock())
    feed = NoMarker()
    w.feed = feed
    assert sum(len(w.step()) for _ in range(10)) == 0
    assert "ArUco" in w.fault and "标定标记未找到" in w.fault
    feed.hide = False
    assert sum(len(w.step()) for _ in range(40)) > 20 and w.fault == ""


def test_the_service_runs_and_stops(tmp_path: Path) -> None:
    settings = Settings(store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path)
    service = build(settings)
    (w,) = service.workers
    w.line = w.line.model_copy(update={"fps": 20})
    lot = w.lots.start("line-1", "p04", "tester")
    thread = threading.Thread(target=service.run)
    thread.start()
    deadline = time.monotonic() + 60
    while w.graded < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
    service.stop.set()
    thread.join(60)
    assert not thread.is_alive() and w.graded >= 30
    assert w.lots.get(lot.id).fruit == w.graded  # all added on the way out
    store = open_store(settings.store_url)
    assert sum(m.fruit for m in minute_rows(store)) == w.graded
    assert settings.line_frame("line-1").exists()


def test_lot_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path))
    run = CliRunner().invoke
    started = run(app, ["grading", "lot", "start", "--plot", "p07", "--note", "8 筐"])
    assert started.exit_code == 0 and "赵淑芬" in started.output
    again = run(app, ["grading", "lot", "start", "--plot", "p01"])
    assert again.exit_code == 1 and "请先结束" in again.output
    assert run(app, ["grading", "lot", "start", "--plot", "p99"]).exit_code == 1
    listed = run(app, ["grading", "lot", "list"])
    assert "#1" in listed.output and "open" in listed.output
    ended = run(app, ["grading", "lot", "end"])
    assert ended.exit_code == 0 and "#1" in ended.output
    assert run(app, ["grading", "lot", "end"]).exit_code == 1  # nothing open
    report = run(app, ["grading", "lot", "report", "1"])
    assert report.exit_code == 0 and "果农,赵淑芬" in report.output and "备注,8 筐" in report.output
    assert "Grower,赵淑芬" in run(app, ["grading", "lot", "report", "1", "--lang", "en"]).output
    assert run(app, ["grading", "lot", "report", "9"]).exit_code == 1


class Belt(Scene):
    """A grading camera on a loopback server: each picture is the conveyor's next frame (a 40-fruit lot)."""

    def __init__(self) -> None:
        super().__init__()
        self.conveyor = Conveyor(seed=8, max_fruit=40)
        self.frames = self.conveyor.frames_to_empty()

    def jpeg(self) -> bytes:
        with self.lock:
            n = self.frame_no
            self.frame_no += 1
        return self._encode(self.conveyor.frame(min(n, self.frames + 10))[0])


@pytest.mark.parametrize("kind", ["snapshot", "stream"])
def test_a_network_camera_is_graded_frame_by_frame(kind: str, tmp_path: Path, rec: Records,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BELT_PASSWORD", "s3cret")
    belt = Belt()
    with CameraServer(belt, auth="digest" if kind == "snapshot" else None, fps=25) as cam:
        line = LineConfig(id="line-n", kind=kind, username="admin" if kind == "snapshot" else None,
                          password_env="BELT_PASSWORD" if kind == "snapshot" else None,
                          url=f"{cam.url}/snapshot.jpg" if kind == "snapshot" else f"{cam.url}/stream.mjpg")
        site = SITE.model_copy(update={"lines": (line,)})
        store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
        store.ensure_ready()
        w = worker(site, line, rec, store, tmp_path, Clock())
        lot = Lots(rec, site).start("line-n", "p10", "tester")
        deadline = time.monotonic() + 120
        while belt.frame_no < belt.frames + 5 and time.monotonic() < deadline:
            w.step()
        w.finish()
    assert w.fault == "" and abs(Lots(rec, site).get(lot.id).fruit - 40) <= 1
