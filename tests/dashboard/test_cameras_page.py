"""视频监控 and the command center's camera wall through AppTest, against a store holding the cameras service's
reports and a snapshot folder of real JPEGs: live, frozen, unreachable and silent cameras."""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from orchard.models import CameraStatus, Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.snapshots import SnapshotFiles
from orchard.store import open_store
from tests.dashboard.conftest import Seeded

pytestmark = pytest.mark.integration
RunApp = Callable[..., AppTest]
NS = 1_000_000_000


def jpeg(w: int, h: int, level: int) -> bytes:
    return cv2.imencode(".jpg", np.full((h, w, 3), level, np.uint8))[1].tobytes()


def captions(at: AppTest) -> list[str]:
    return [img.caption for i in at.get("image") for img in i.proto.imgs]


def seed_cameras(seeded: Seeded, now: int) -> SnapshotFiles:
    """cam-p01 live, cam-p05 frozen, cam-p02 unreachable for 10 min, cam-p04 silent for 30 min, the rest never."""
    files = SnapshotFiles(seeded.data_dir / "snapshots")
    store = open_store(seeded.store_url)
    points = []
    for cam, plot, health, age_s, since_s in (("cam-p01", "p01", "ok", 5, 3600), ("cam-p05", "p05", "frozen", 5, 900),
                                              ("cam-p04", "p04", "ok", 1800, 7200)):
        for k in range(12):
            t = now - int((age_s + 10 * k) * NS)
            ref = files.write(cam, t, jpeg(1280, 720, 100), jpeg(320, 180, 100))
            points.append(CameraStatus("sunzigou", plot, cam, t, health, now - since_s * NS, 20.0, 9000, 100.0, 5.0,
                                       200.0, 0.3, snapshot_ns=ref.time_ns).point())
    files.write("cam-p02", now - 700 * NS, jpeg(1280, 720, 90), jpeg(320, 180, 90))
    points.append(CameraStatus("sunzigou", "p02", "cam-p02", now - 5 * NS, "unreachable", now - 600 * NS, 5000.0,
                               error="refused").point())
    store.write(points)
    store.close()
    return files


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def test_camera_grid_is_honest_about_dead_cameras(run_app: RunApp, empty_store: Seeded) -> None:
    seed_cameras(empty_store, time.time_ns())
    at = run_app(empty_store, "cameras")
    assert at.title[0].value == "视频监控"
    shown = texts(at)
    assert shown.count("摄像机离线，自") == 2  # cam-p02 (unreachable) and cam-p04 (silent)
    assert "画面冻结，非实时" in shown
    assert "实时 · " in shown
    assert shown.count("尚未收到这台摄像机的任何画面") == 2  # cam-p07, cam-p10
    assert len(at.get("image")) == 2  # only cam-p01 and the (labelled) frozen cam-p05 show a picture
    assert "🔴 离线 2" in shown and "🟢 正常 1" in shown
    # troubled cameras first
    heads = [m.value for m in at.markdown if m.value.startswith(("🟢", "🟠", "🔴", "⚪"))]
    assert heads[0].startswith("🔴") and heads[-1].startswith(("🟢", "⚪"))


def test_camera_grid_filters_by_plot_and_opens_one(run_app: RunApp, empty_store: Seeded) -> None:
    seed_cameras(empty_store, time.time_ns())
    at = run_app(empty_store, "cameras")
    at.multiselect(key="cam_plots").select("p01").run()
    heads = [m.value for m in at.markdown if m.value.startswith(("🟢", "🟠", "🔴", "⚪"))]
    assert len(heads) == 1 and "大湾园区路口" in heads[0]
    at.button(key="cam_open_cam-p01").click().run()
    assert not at.exception
    assert at.subheader[0].value.startswith("大湾园区路口")
    assert any(c.startswith("拍摄于") for c in captions(at))
    assert len(at.get("plotly_chart")) == 1  # the 24-hour timeline
    assert at.slider(key="cam_at_cam-p01") is not None
    at.button(key="cam_back").click().run()
    assert [x.value for x in at.subheader] == []  # back on the grid: no camera open
    assert [m.value for m in at.markdown if m.value.startswith("🟢")] == ["🟢 **大湾园区路口** · 大湾红阳园"]


def test_a_link_opens_one_camera(run_app: RunApp, empty_store: Seeded) -> None:
    seed_cameras(empty_store, time.time_ns())
    at = run_app(empty_store, "cameras", camera="cam-p02")
    assert at.subheader[0].value.startswith("石板坡主道")
    assert any(c.startswith("拍摄于") for c in captions(at))  # its last picture, 11 minutes old, dated


def test_command_center_camera_wall(run_app: RunApp, empty_store: Seeded) -> None:
    seed_cameras(empty_store, time.time_ns())
    at = run_app(empty_store)
    assert "视频监控" in [s.value for s in at.subheader]
    shown = texts(at)
    assert shown.count("摄像机离线，自") == 2 and "实时 · " in shown
    assert len(at.get("image")) == 2


def test_alarm_shows_its_snapshot(run_app: RunApp, empty_store: Seeded) -> None:
    now = time.time_ns()
    files = seed_cameras(empty_store, now)
    records = Records(f"sqlite:///{empty_store.data_dir}/records.sqlite")
    book = AlarmBook(records)
    alarm, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                                {"temp_c": -2.0, "threshold_c": -1.5, "minutes": 40}, "p01"), now)
    ref = files.latest("cam-p01")
    assert ref is not None
    book.attach(alarm.id, ref, now)
    records.close()
    at = run_app(empty_store, "alarms")
    assert len(at.get("image")) == 1
    assert "现场照片：大湾园区路口" in str(at.get("image")[0].proto)  # the camera by the name people know
