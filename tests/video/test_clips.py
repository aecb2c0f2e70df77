"""Clips around events from a real RTSP camera's buffer: cut without re-encoding, starting before the event,
attached to the alarm, counted and capped by retention."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from bench.servers import Mosquitto, RtspServer
from orchard.footage import Footage
from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.snapshots import Retention, SnapshotFiles
from orchard.settings import CamerasSettings
from video.clips import ClipDesk, ClipFailed, cut
from video.recorder import Recorder

pytestmark = pytest.mark.integration
NS = 1_000_000_000
CFG = CamerasSettings(buffer_s=40, clip_before_s=4, clip_after_s=3, stall_after_s=5)


@pytest.fixture
def recording(tmp_path: Path, rtsp: Callable[..., RtspServer]) -> Iterator[tuple[Footage, SnapshotFiles]]:
    """One camera's buffer being written from a real RTSP stream."""
    server = rtsp({"main": "test"})
    footage, files = Footage(tmp_path / "video"), SnapshotFiles(tmp_path / "snapshots")
    recorder = Recorder("cam-c", server.url("main"), footage, CFG)
    recorder.start()
    yield footage, files
    recorder.stop()


def wait_until(cond: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def probe(path: Path) -> dict[str, object]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,nb_frames",
                          "-of", "json", str(path)], capture_output=True, check=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_a_clip_covers_the_event_from_before_to_after(recording: tuple[Footage, SnapshotFiles]) -> None:
    footage, files = recording
    wait_until(lambda: len(footage.segments("cam-c")) >= 3, 30, "no segments")
    event_ns = time.time_ns()
    wait_until(lambda: footage.segments("cam-c")[-1].end_ns >= event_ns + 3 * NS, 30, "the buffer never caught up")
    clip = cut("ffmpeg", footage, files, "cam-c", event_ns - 2 * NS, event_ns + 3 * NS)
    assert clip.ref.time_ns <= event_ns - 2 * NS + NS // 2  # from a keyframe at or just before the asked start
    # The event is inside (segment times come from file times: consecutive segments can sit a few ms apart).
    assert clip.ref.time_ns < event_ns and clip.end_ns >= event_ns + 3 * NS - NS // 20
    info = probe(files.root / clip.ref.path)
    assert info["streams"][0]["codec_name"] == "h264"  # type: ignore[index]  # copied, not re-encoded
    duration = float(info["format"]["duration"])  # type: ignore[index]
    assert 4.5 <= duration <= 8.5 and abs(duration - clip.seconds) < 1.5
    cap = cv2.VideoCapture(str(files.root / clip.ref.path))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames >= 4.5 * 15  # 15 fps, every frame there
    poster = cv2.imread(str(files.root / clip.ref.thumb))
    assert poster is not None and poster.shape[1] == 320


def test_nothing_to_cut_outside_the_buffer(recording: tuple[Footage, SnapshotFiles]) -> None:
    footage, files = recording
    wait_until(lambda: footage.segments("cam-c"), 30, "no segments")
    with pytest.raises(ClipFailed, match="no video"):
        cut("ffmpeg", footage, files, "cam-c", time.time_ns() - 3600 * NS, time.time_ns() - 3500 * NS)


def test_a_raised_alarm_gets_its_clip_once_as_evidence(tmp_path: Path, recording: tuple[Footage, SnapshotFiles]
                                                       ) -> None:
    footage, files = recording
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    book = AlarmBook(records)
    alarm, _ = book.fire(Signal("sunzigou", "camera:cam-c", "intrusion", "warning", "rules.intrusion",
                                plot="p01", device="cam-c"), time.time_ns())
    # The buffer must reach back past clip_before_s before the snapshot (a machine under load starts late).
    wait_until(lambda: (s := footage.segments("cam-c")) and s[0].start_ns < time.time_ns() - 6 * NS, 40,
               "the buffer never reached 6 s back")
    retention = Retention(files, 14, 10**9, 365)
    desk = ClipDesk(CFG, footage, files, retention, {"p01": ["cam-c"]}, book.attach,
                    lambda a: {r.path for r in book.evidence(a)})
    seen_ns = time.time_ns()
    change = {"alarm_id": alarm.id, "type": "intrusion", "change": "raised", "started_ns": seen_ns + 5 * NS,
              "details": {"snapshot_ns": seen_ns}}
    assert [r.camera for r in desk.on_alert("p01", change)] == ["cam-c"]
    assert desk.on_alert("p02", {**change, "alarm_id": alarm.id + 1}) == []  # a plot without rtsp cameras
    assert desk.on_alert("p01", {**change, "change": "cleared"}) == []
    wait_until(lambda: desk.work() or desk.pending() == 0, 30, "the clip was never cut")
    held = book.evidence(alarm.id)
    assert [SnapshotFiles.is_clip(r.path) for r in held] == [True]
    assert held[0].time_ns <= seen_ns - 3 * NS  # from (about) clip_before_s before the snapshot that saw it
    assert retention.total == (files.root / held[0].path).stat().st_size + (files.root / held[0].thumb).stat().st_size
    # The broker hands the retained change back after a restart: a new desk asks again, but cuts nothing.
    again = ClipDesk(CFG, footage, files, retention, {"p01": ["cam-c"]}, book.attach,
                     lambda a: {r.path for r in book.evidence(a)})
    assert again.on_alert("p01", change)
    wait_until(lambda: again.work() is not None and again.pending() == 0, 30, "the request never settled")
    assert again.cut_clips == 0 and desk.cut_clips == 1
    records.close()


def test_clips_count_in_the_size_cap_and_evidence_clips_stay(tmp_path: Path,
                                                             recording: tuple[Footage, SnapshotFiles]) -> None:
    footage, files = recording
    wait_until(lambda: len(footage.segments("cam-c")) >= 6, 40, "not enough segments")
    segs = footage.segments("cam-c")
    kept = cut("ffmpeg", footage, files, "cam-c", segs[0].start_ns, segs[1].end_ns)
    loose = cut("ffmpeg", footage, files, "cam-c", segs[3].start_ns, segs[4].end_ns)
    snap = files.write("cam-c", segs[5].start_ns, b"\xff\xd8full", b"\xff\xd8thumb")
    retention = Retention(files, 14, 1, 365)  # reads the clips from disk; a cap of one byte
    assert retention.total == kept.bytes + loose.bytes + len(b"\xff\xd8full") + len(b"\xff\xd8thumb")
    done = retention.sweep(time.time_ns(), {kept.ref.path})
    assert done.deleted == 2 and done.kept_evidence == 1
    assert (files.root / kept.ref.path).is_file() and (files.root / kept.ref.thumb).is_file()
    assert not (files.root / loose.ref.path).exists() and not (files.root / loose.ref.thumb).exists()
    assert not (files.root / snap.path).exists()
    assert done.total_bytes == kept.bytes


def test_the_cameras_service_keeps_the_clip_of_an_alarm_on_its_plot(tmp_path: Path, rtsp: Callable[..., RtspServer],
                                                                    mosquitto: Mosquitto) -> None:
    """The whole path: analytics' alarm change on the broker (retained, as analytics publishes it), the cameras
    service recording a real RTSP camera of that plot, the clip cut and attached to the alarm in the records DB."""
    import threading

    import orjson
    from paho.mqtt.client import CallbackAPIVersion, Client

    from orchard.settings import Settings
    from orchard.site import SHIPPED
    from tests.conftest import unique
    from tests.integration.test_live_video import rtsp_site
    from video.service import build

    server = rtsp({"p01": "test", "p02": "test"})
    (tmp_path / "site").mkdir()
    rtsp_site(tmp_path / "site" / "site.toml", server)
    assert (SHIPPED / "sunzigou").is_dir()
    prefix = unique("orchard")
    s = Settings(data_dir=tmp_path, store_url=f"sqlite:///{tmp_path}/ts.sqlite", mqtt_url=mosquitto.url,
                 mqtt_prefix=prefix, site_file=tmp_path / "site" / "site.toml",
                 cameras={"buffer_s": 60, "clip_before_s": 3, "clip_after_s": 2})  # type: ignore[arg-type]
    book = AlarmBook(Records.open(s))
    service = build(s)
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        footage = Footage(s.video_dir)
        wait_until(lambda: len(footage.segments("cam-p01")) >= 4, 40, "the service never recorded cam-p01")
        now = time.time_ns()
        alarm, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                                    {}, "p01"), now)
        pub = Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"))
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        body = {"alarm_id": alarm.id, "type": "spring_frost", "severity": "critical", "change": "raised",
                "active": True, "source": "plot:p01", "started_ns": now, "details": {}}
        pub.publish(f"{prefix}/sunzigou/alerts/p01", orjson.dumps(body), qos=1, retain=True).wait_for_publish(10)
        wait_until(lambda: any(SnapshotFiles.is_clip(r.path) for r in book.evidence(alarm.id)), 40,
                   "no clip attached to the alarm")
        clips = [r for r in book.evidence(alarm.id) if SnapshotFiles.is_clip(r.path)]
        assert [r.camera for r in clips] == ["cam-p01"]  # its plot's camera only, not p02's
        assert clips[0].time_ns <= now - 2 * NS
        assert (s.snapshot_dir / clips[0].path).stat().st_size > 10_000
        pub.publish(f"{prefix}/sunzigou/alerts/p01", b"", qos=1, retain=True).wait_for_publish(10)
        pub.loop_stop()
        pub.disconnect()
    finally:
        service.stop.set()
        runner.join(30)


def test_prune_deletes_only_what_an_earlier_ffmpeg_left_behind(tmp_path: Path) -> None:
    """Segments in the playlist stay whatever their age; unlisted ones go once older than the buffer (a crashed
    ffmpeg's, not yet deleted by the next one, which only deletes what its own playlist drops)."""
    import os

    footage = Footage(tmp_path / "video")
    folder = footage.folder("cam-p")
    folder.mkdir(parents=True)
    (folder / "live.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nseg-1796400000-0001.ts\n")
    now = 1_796_500_000.0
    for name, age_s in (("seg-1796400000-0001.ts", 9_999), ("seg-1796300000-0007.ts", CFG.buffer_s + 61),
                        ("seg-1796499990-0008.ts", 10), ("notes.txt", 99_999)):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (now - age_s, now - age_s))
    recorder = Recorder("cam-p", "rtsp://127.0.0.1:9/none", footage, CFG)  # never started: prune only
    assert recorder.prune(now) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["live.m3u8", "notes.txt", "seg-1796400000-0001.ts",
                                                        "seg-1796499990-0008.ts"]
