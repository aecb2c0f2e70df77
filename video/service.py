"""`orchard cameras`: every camera's snapshots, stored with their thumbnails, judged, and reported.

Per camera, one thread takes a snapshot every `interval_s` (a slow or dead camera only ever delays itself):
fetch, thumbnail and metrics (video/analyse.py), motion, health (video/health.py), files (orchard/records/snapshots.py),
then a status point for the store. Health changes and intrusions are also published on MQTT
(<prefix>/<site>/<plot>/<camera>/camera) so analytics looks at once instead of at its next full cycle.
A writer thread batches status points to the store; a retention sweep runs every minute.

An rtsp camera's source keeps ffmpeg recording its rolling buffer (video/recorder.py). Alarm changes come back
on <prefix>/<site>/alerts/+; a raised alarm on a plot with rtsp cameras asks each for a clip around it
(video/clips.py), cut by the clip thread once the buffer holds it and attached to the alarm as evidence.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from paho.mqtt.client import Client, MQTTMessage

from orchard.footage import Footage
from orchard.indicators import sun_elevation_deg
from orchard.logs import event
from orchard.models import CameraStatus
from orchard.mqtt import connect_to, make_client
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.snapshots import Retention, SnapshotFiles
from orchard.settings import CamerasSettings, Settings
from orchard.site import CameraConfig, CameraKind, Site, site_for
from orchard.store import open_store
from orchard.store.writer import PointWriter
from orchard.supervise import Heartbeat, Steps
from video.analyse import BadImage, MotionDetector, picture
from video.clips import ClipDesk
from video.health import HealthTracker
from video.recorder import Recorder
from video.sources import CameraSource, CameraUnavailable, open_source

log = logging.getLogger("orchard.cameras")
NS = 1_000_000_000


class CameraWorker:
    """One camera: `take` makes one snapshot attempt and says what came of it; `run` repeats it on time."""

    def __init__(self, site: Site, cam: CameraConfig, cfg: CamerasSettings, files: SnapshotFiles,
                 retention: Retention | None, report: Callable[[CameraStatus, bool], None],
                 source: CameraSource | None = None, footage: Footage | None = None) -> None:
        self.site, self.cam, self.cfg, self.files, self.retention = site, cam, cfg, files, retention
        self.footage = footage or Footage(files.root.parent / "video")
        self.report = report
        self.source = source
        self.health = HealthTracker(cfg)
        self.motion = MotionDetector(cam.masks, cam.zones, cam.min_area_pct)
        self.watched = {z.name for z in cam.zones if z.intrusion}
        self.taken = 0
        self.last_snapshot_ns: int | None = None  # the newest stored snapshot (what a repeated frame shows)
        self.steps = Steps(log)

    def night(self, time_ns: int) -> bool:
        lat, lon = self.site.centre
        return sun_elevation_deg(lat, lon, datetime.fromtimestamp(time_ns / NS, UTC)) < self.cfg.night_sun_deg

    def take(self) -> CameraStatus:
        started = time.time_ns()
        cam, site = self.cam, self.site.id
        before = (self.health.state, self.health.since_ns)
        try:
            t0 = time.perf_counter()
            if self.source is None:
                self.source = open_source(cam, self.cfg, self.footage)
            frame = self.source.snapshot()
            if frame.repeat:  # no newer picture yet (a keyframe interval longer than ours): only say we're here
                status = CameraStatus(site, cam.plot, cam.id, started, self.health.state,
                                      self.health.since_ns or started, 0.0, snapshot_ns=self.last_snapshot_ns,
                                      error=self.health.error)
                self.report(status, False)
                return status
            latency = (time.perf_counter() - t0) * 1000
            pic = picture(frame, self.cfg.thumb_px, self.cfg.jpeg_quality)
        except (CameraUnavailable, BadImage) as e:
            h = self.health.failed(started, str(e))
            status = CameraStatus(site, cam.plot, cam.id, started, h.state, h.since_ns,
                                  round((time.time_ns() - started) / 1e6, 1), error=str(e)[:300])
            self.report(status, (h.state, h.since_ns) != before)
            return status
        motion = self.motion.update(pic.thumb)
        h = self.health.observed(frame.time_ns, pic, frame.fault)
        intrusion = ""
        if h.state == "ok" and self.night(frame.time_ns):
            intrusion = next((z for z in motion.zones if z in self.watched), "")
        ref = self.files.write(cam.id, frame.time_ns, pic.full_jpeg, pic.thumb_jpeg)
        size = len(pic.full_jpeg) + len(pic.thumb_jpeg)
        if self.retention is not None:
            self.retention.added(ref, size)
        self.taken += 1
        self.last_snapshot_ns = ref.time_ns
        status = CameraStatus(site, cam.plot, cam.id, ref.time_ns, h.state, h.since_ns, round(latency, 1), size,
                              round(pic.brightness, 1), round(pic.contrast, 1), round(pic.sharpness, 1),
                              motion.score, len(motion.boxes), intrusion, ref.time_ns, error=h.error)
        self.report(status, bool(intrusion) or (h.state, h.since_ns) != before)
        return status

    def run(self, stop: threading.Event) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            # A bug with one camera's picture must not end its thread for good: logged, counted, next snapshot.
            self.steps.run("snapshot", self.take, camera=self.cam.id)
            next_at = max(next_at + self.cam.interval_s, time.monotonic())
            stop.wait(next_at - time.monotonic())
        if self.source is not None:
            self.source.close()


class Cameras:
    def __init__(self, settings: Settings, workers: list[CameraWorker], writer: PointWriter,
                 retention: Retention, book: AlarmBook, client: Client | None, clips: ClipDesk | None = None) -> None:
        self.settings, self.workers, self.writer, self.retention, self.book, self.client = (
            settings, workers, writer, retention, book, client)
        self.clips = clips
        self.stop = threading.Event()

    def alerts_topic(self) -> str:
        return f"{self.settings.mqtt_prefix}/{self.settings.site}/alerts/+"

    def _connected(self, client: Client, _userdata: object, _flags: object, reason: object, _props: object = None,
                   ) -> None:
        if self.clips is not None and not getattr(reason, "is_failure", False):
            client.subscribe(self.alerts_topic(), qos=1)  # again after every reconnect

    def _alert(self, _client: Client, _userdata: object, msg: MQTTMessage) -> None:
        """An alarm change of a plot: clips asked of its rtsp cameras (cut later, by the clip thread)."""
        if self.clips is None:
            return
        try:
            body = orjson.loads(msg.payload)
            asked = self.clips.on_alert(msg.topic.rsplit("/", 1)[-1], body) if isinstance(body, dict) else []
        except orjson.JSONDecodeError:
            return
        for r in asked:
            event(log, "clip_asked", alarm=r.alarm_id, camera=r.camera, event_ns=r.event_ns)

    def cut_clips(self) -> None:
        steps = Steps(log)
        while not self.stop.wait(1.0):
            if self.clips is not None:
                steps.run("clips", self.clips.work)

    def report(self, status: CameraStatus, news: bool) -> None:
        self.writer.put(status.point())
        if news:
            event(log, "camera_event", logging.WARNING if status.health != "ok" or status.intrusion else logging.INFO,
                  camera=status.camera, health=status.health, intrusion=status.intrusion, error=status.error)
            if self.client is not None:
                s = self.settings
                payload = {"ts": status.time_ns // 1_000_000, "health": status.health, "intrusion": status.intrusion}
                self.client.publish(f"{s.mqtt_prefix}/{s.site}/{status.plot}/{status.camera}/camera",
                                    orjson.dumps(payload), qos=1)

    def sweep(self) -> None:
        try:
            evidence = self.book.evidence_paths()
        except Exception as e:  # records DB away: sweep later, rather than delete what an alarm may hold
            event(log, "sweep_skipped", logging.WARNING, error=str(e)[:200])
            return
        for w in self.workers:  # segments an earlier ffmpeg left behind
            recorder = getattr(w.source, "recorder", None)
            if isinstance(recorder, Recorder):
                recorder.prune()
        done = self.retention.sweep(time.time_ns(), evidence)
        if done.deleted or done.kept_evidence:
            event(log, "retention", deleted=done.deleted, freed_mb=round(done.freed_bytes / 1e6, 1),
                  total_mb=round(done.total_bytes / 1e6, 1), kept_evidence=done.kept_evidence)

    def run(self) -> None:
        if self.client is not None:
            self.client.on_connect = self._connected
            self.client.on_message = self._alert
            connect_to(self.client, self.settings.mqtt_url)
            self.client.loop_start()
        threads = [threading.Thread(target=self.writer.run, args=(self.stop,), name="status-writer", daemon=True),
                   threading.Thread(target=self.cut_clips, name="clips", daemon=True)]
        threads += [threading.Thread(target=w.run, args=(self.stop,), name=f"camera-{w.cam.id}", daemon=True)
                    for w in self.workers]
        for t in threads:
            t.start()
        steps = Steps(log)
        while not self.stop.wait(60.0):
            steps.run("retention_sweep", self.sweep)
        for t in threads:
            t.join(self.settings.cameras.timeout_s + 5)
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


def build(settings: Settings, with_mqtt: bool = True) -> Cameras:
    """Everything the service needs, in order; no camera is contacted until `run`."""
    site = site_for(settings)
    cfg = settings.cameras
    store = open_store(settings.store_url, site=site.id)
    store.ensure_ready()
    files = SnapshotFiles(settings.snapshot_dir)
    retention = Retention(files, cfg.max_days, int(cfg.max_gb * 1e9), cfg.evidence_days)
    book = AlarmBook(Records.village(settings), site.id)
    # Alive while status points reach the store (or nothing waits): every camera reports at least each interval.
    limit = max(180.0, 3 * max((c.interval_s for c in site.cameras), default=60.0))
    writer = PointWriter(store, on_written=Heartbeat(settings.data_dir, "cameras", limit).beat)
    client = make_client(settings.mqtt_url, f"orchard-cameras-{settings.site}",
                         protocol=settings.mqtt_protocol) if with_mqtt else None
    footage = Footage(settings.video_dir)
    recorded: dict[str, list[str]] = {}
    for cam in site.cameras:
        if cam.kind == CameraKind.RTSP:
            recorded.setdefault(cam.plot, []).append(cam.id)
    clips = ClipDesk(cfg, footage, files, retention, recorded, book.attach,
                     lambda alarm_id: {r.path for r in book.evidence(alarm_id)}) if recorded else None
    service = Cameras(settings, [], writer, retention, book, client, clips)
    service.workers = [CameraWorker(site, cam, cfg, files, retention, service.report, footage=footage)
                       for cam in site.cameras]
    return service


def run_cameras(settings: Settings) -> None:
    service = build(settings)

    def stop(*_: object) -> None:
        service.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    event(log, "cameras_started", site=settings.site, cameras=len(service.workers),
          snapshot_dir=str(settings.snapshot_dir))
    service.run()
