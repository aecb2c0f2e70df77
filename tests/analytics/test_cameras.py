"""Camera health and intrusions become alarms through the rule pack; alarms carry the camera's snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.engine import Engine
from analytics.evidence import Evidence
from analytics.notify.compose import compose
from analytics.rules import load
from analytics.rules.base import CameraData, CameraRule
from orchard.catalogue import TELEMETRY
from orchard.models import CameraStatus, Device, Point
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.snapshots import SnapshotFiles
from orchard.site import SHIPPED, load_site
from orchard.store import TimeSeriesStore, open_store
from tests.analytics.test_engine import at

NS = 10**9
MIN = 60 * NS
SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
CAM = next(c for c in SITE.cameras if c.id == "cam-p01")  # every 10 s
NOW = at("2026-03-15T02:00")
RULES = {name: cls() for name, cls in load().items() if issubclass(cls, CameraRule)}


def status(ago_s: float, health: str = "ok", intrusion: str = "", since_ago_s: float | None = None) -> CameraStatus:
    t = NOW - int(ago_s * NS)
    since = NOW - int((since_ago_s if since_ago_s is not None else ago_s) * NS)
    return CameraStatus(SITE.id, CAM.plot, CAM.id, t, health, since, 12.0, 50_000, 90.0, 40.0, 300.0, 0.5,
                        1 if intrusion else 0, intrusion, t if health != "unreachable" else None,
                        "refused" if health == "unreachable" else "")


def verdicts(*statuses: CameraStatus) -> dict[str, str]:
    data = CameraData(CAM, tuple(sorted(statuses, key=lambda s: s.time_ns)))
    out = {}
    for name, rule in RULES.items():
        (v,) = rule.evaluate(SITE, data, rule.Config(), NOW)
        out[name] = v.state if v.signal is None else f"{v.state}:{v.signal.severity}"
    return out


ALL_CLEAR = {"camera_offline": "clear", "camera_dark": "clear", "camera_frozen": "clear",
             "camera_low_fps": "clear", "camera_blurred": "clear", "intrusion": "clear"}


@pytest.mark.parametrize(("statuses", "expected"), [
    ((status(5),), ALL_CLEAR),
    ((), {**ALL_CLEAR, "camera_offline": "fire:warning", "camera_dark": "hold", "camera_frozen": "hold",
          "camera_low_fps": "hold", "camera_blurred": "hold"}),
    ((status(5, "unreachable", since_ago_s=300),), {**ALL_CLEAR, "camera_offline": "fire:warning",
                                                    "camera_dark": "hold", "camera_frozen": "hold",
                                                    "camera_low_fps": "hold", "camera_blurred": "hold"}),
    ((status(100),), ALL_CLEAR),  # 10 s camera, 100 s quiet: within the 2-minute floor
    ((status(150),), {**ALL_CLEAR, "camera_offline": "fire:warning"}),  # silent: the camera or the service died
    ((status(5, "dark"),), {**ALL_CLEAR, "camera_dark": "fire:warning"}),
    ((status(5, "frozen"),), {**ALL_CLEAR, "camera_frozen": "fire:warning"}),
    ((status(5, "blurred"),), {**ALL_CLEAR, "camera_blurred": "fire:warning"}),
    ((status(5, "low_fps"),), {**ALL_CLEAR, "camera_low_fps": "fire:warning"}),
    ((status(300, intrusion="园中道路"), status(5)), {**ALL_CLEAR, "intrusion": "fire:major"}),
    ((status(14 * 60, intrusion="园中道路"), status(5)), {**ALL_CLEAR, "intrusion": "fire:major"}),
    ((status(16 * 60, intrusion="园中道路"), status(5)), ALL_CLEAR),  # 15 min after the last sighting
])
def test_camera_rules(statuses: tuple[CameraStatus, ...], expected: dict[str, str]) -> None:
    assert verdicts(*statuses) == expected


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TimeSeriesStore, Records, AlarmBook, SnapshotFiles]]:
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    for d in SITE.devices:
        records.upsert_device(Device(d.id, SITE.id, d.plot, "approved", d.kind))
    yield store, records, AlarmBook(records), SnapshotFiles(tmp_path / "snapshots")
    store.close()
    records.close()


def report(store: TimeSeriesStore, files: SnapshotFiles, camera: str, plot: str, start: int, end: int,
           every_s: int = 10, **kw: object) -> None:
    """A camera that took a snapshot every `every_s` over [start, end) and reported each."""
    points = []
    for t in range(start, end, every_s * NS):
        ref = files.write(camera, t, b"\xff\xd8full", b"\xff\xd8thumb")
        s = CameraStatus(SITE.id, plot, camera, t, "ok", start, 10.0, 12, 100.0, 40.0, 300.0, 0.1,
                         snapshot_ns=ref.time_ns)
        points.append(CameraStatus(**{**{f: getattr(s, f) for f in s.__slots__}, **kw}).point())  # type: ignore
    store.write(points)


def everyone_reports(store: TimeSeriesStore, files: SnapshotFiles, end: int, temp: float) -> None:
    for d in SITE.devices:
        fields = {"air_temp_c": temp, "rh_pct": 70.0, "battery_v": 3.9} if d.kind == "weather_station" else {
            "battery_v": 3.9}
        store.write([Point(TELEMETRY, {"site": SITE.id, "plot": d.plot, "device": d.id}, dict(fields),
                           end - k * MIN) for k in range(60)])
    for c in SITE.cameras:
        report(store, files, c.id, c.plot, end - 20 * MIN, end, every_s=30)


def active(book: AlarmBook) -> dict[tuple[str, str], str]:
    return {(a.source, a.type): a.severity for a in book.active()}


def test_a_sensor_alarm_carries_the_nearest_snapshot_of_its_plots_camera(
        world: tuple[TimeSeriesStore, Records, AlarmBook, SnapshotFiles]) -> None:
    store, records, book, files = world
    everyone_reports(store, files, NOW, 4.0)
    store.write([Point(TELEMETRY, {"site": SITE.id, "plot": "p01", "device": "ws-p01"},
                       {"air_temp_c": -2.0, "rh_pct": 92.0}, NOW - k * MIN) for k in range(45)])
    store.write([Point(TELEMETRY, {"site": SITE.id, "plot": "p03", "device": "ws-p03"},
                       {"air_temp_c": -2.0, "rh_pct": 92.0}, NOW - k * MIN) for k in range(45)])
    engine = Engine(SITE, store, records, book, evidence=Evidence(SITE, files))
    engine.cycle(NOW)
    assert active(book) == {("plot:p01", "spring_frost"): "critical", ("plot:p03", "spring_frost"): "critical"}
    by_plot = {a.plot: a for a in book.active()}
    (photo,) = book.evidence(by_plot["p01"].id)
    assert photo.camera == "cam-p01" and abs(photo.time_ns - NOW) <= 30 * NS
    assert files.read(photo.path) == b"\xff\xd8full" and files.read(photo.thumb) == b"\xff\xd8thumb"
    assert book.evidence(by_plot["p03"].id) == []  # p03 has no camera
    assert photo.path in book.evidence_paths()
    assert [e.action for e in book.events(by_plot["p01"].id)] == ["raised", "evidence"]

    msg = compose(by_plot["p01"], "alarm", "zh", SITE, "https://x/receipt?t=abc", photo)
    assert "附现场照片：大湾园区路口" in msg.plain and "打开链接查看" in msg.markdown
    assert "Snapshot: 大湾园区路口" in compose(by_plot["p01"], "alarm", "en", SITE, "https://x", photo).plain


def test_intrusion_alarm_carries_the_snapshot_that_saw_it_and_offline_mutes_the_rest(
        world: tuple[TimeSeriesStore, Records, AlarmBook, SnapshotFiles]) -> None:
    store, records, book, files = world
    everyone_reports(store, files, NOW, 6.0)
    seen_at = NOW - 4 * MIN
    report(store, files, "cam-p02", "p02", seen_at, seen_at + 1, intrusion="园中道路", objects=1)
    report(store, files, "cam-p04", "p04", NOW - 60 * NS, NOW, health="dark")
    engine = Engine(SITE, store, records, book, evidence=Evidence(SITE, files))
    engine.cycle(NOW)
    found = active(book)
    assert found == {("camera:cam-p02", "intrusion"): "major", ("camera:cam-p04", "camera_dark"): "warning"}
    intrusion = next(a for a in book.active() if a.type == "intrusion")
    assert intrusion.plot == "p02" and intrusion.details["zone"] == "园中道路"
    assert [r.time_ns for r in book.evidence(intrusion.id)] == [seen_at]
    dark = next(a for a in book.active() if a.type == "camera_dark")
    assert book.evidence(dark.id)[0].camera == "cam-p04"

    # cam-p04 then stops answering: offline is raised, its dark alarm stays as it was (not re-judged). cam-p05
    # sees someone and then goes dead: the intrusion is raised all the same (not muted by the camera's death).
    report(store, files, "cam-p04", "p04", NOW + 10 * NS, NOW + 40 * NS, health="unreachable", snapshot_ns=None,
           error="refused")
    report(store, files, "cam-p05", "p05", NOW, NOW + 1, intrusion="园中道路", objects=1)
    report(store, files, "cam-p05", "p05", NOW + 10 * NS, NOW + 40 * NS, health="unreachable", snapshot_ns=None,
           error="refused")
    engine.cycle(NOW + 40 * NS)
    found = active(book)
    assert found[("camera:cam-p04", "camera_offline")] == "warning" and ("camera:cam-p04", "camera_dark") in found
    assert found[("camera:cam-p05", "camera_offline")] == "warning"
    assert found[("camera:cam-p05", "intrusion")] == "major"

    later = NOW + 20 * MIN  # nobody seen for 15 minutes: the intrusion clears
    everyone_reports(store, files, later, 6.0)
    engine.cycle(later)
    assert ("camera:cam-p02", "intrusion") not in active(book)
    assert ("camera:cam-p04", "camera_offline") not in active(book)
