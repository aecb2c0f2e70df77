"""`orchard demo`: the whole system on one machine, no Docker, no system packages.

Order: embedded broker (unless ORCHARD_MQTT_URL is set) -> backfill of the store (SQLite unless ORCHARD_STORE_URL
is set) -> demo people (each plot's owner as a farmer, an adviser, the command center; messages to their in-app
inbox) -> the demo's cameras as real H.264 RTSP streams (below) -> ingest -> live simulator -> cameras -> grading ->
analytics -> dashboard. Each service runs as its own `orchard <service>` process, as in production; Ctrl-C stops
them all, newest first.

The demo's cameras: where Debian's GStreamer RTSP server is installed (the README's packages), each synthetic
camera of the site is drawn live (the synthetic orchard at the real time of day, the night's visitor included)
at 640x360 and 5 frames a second, encoded to H.264 and published on a local RTSP server; the demo's site file
(<data_dir>/demo-site/site.toml, unless ORCHARD_SITE_FILE is set) makes them rtsp cameras, so the cameras
service records them with ffmpeg and the dashboard plays them live. Without the server they stay snapshot
cameras, and the demo says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.feed import FrameFeed
from bench.servers import RtspServer, ServerMissing, free_port
from orchard.links import sign_screen
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.lots import Lots
from orchard.records.people import People, Role, User
from orchard.redact import redact_url
from orchard.settings import Settings
from orchard.site import SHIPPED, CameraKind, site_for

DEMO_SIZE, DEMO_FPS = (640, 360), 5


def rtsp_site_text(text: str, urls: dict[str, str]) -> str:
    """A site file's text with these cameras (id -> RTSP URL) made rtsp cameras."""
    for cam, url in urls.items():
        def rtsp(m: re.Match[str], url: str = url) -> str:
            return f'{m.group(1)}kind = "rtsp"\nurl = "{url}"'

        text, n = re.subn(rf'(id = "{re.escape(cam)}"\n(?:[^\[]*?\n)?)kind = "[a-z]+"\nurl = "[^"]*"', rtsp, text,
                          count=1)
        if n != 1:
            raise ValueError(f"camera {cam} not found in the site file")
    return text


class DemoStreams:
    """The demo's synthetic cameras as live RTSP streams (see the module's text); `start` says whether it could."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        from video.synthetic import SyntheticSource

        self.folder = folder
        self.cameras = [c for c in site_for(settings).cameras if c.kind == CameraKind.SYNTHETIC]
        self.sources = {c.id: SyntheticSource.from_config(c.model_copy(update={"width": DEMO_SIZE[0],
                                                                                "height": DEMO_SIZE[1]}))
                        for c in self.cameras}
        self.feeds: list[FrameFeed] = []
        self.server: RtspServer | None = None

    def start(self) -> bool:
        if not self.cameras:
            return False
        mounts = {}
        for cam in self.cameras:
            feed = FrameFeed(self._drawer(cam.id), *DEMO_SIZE, fps=DEMO_FPS)
            self.feeds.append(feed.start())
            mounts[cam.id] = feed.spec
        try:
            self.server = RtspServer(self.folder / "rtsp", mounts, fps=DEMO_FPS, gop=DEMO_FPS, size=DEMO_SIZE)
            self.server.start()
        except (ServerMissing, RuntimeError, TimeoutError) as e:
            print(f"演示摄像头只有快照，没有实时视频 / the demo cameras are snapshots only, no live video: {e}",
                  flush=True)
            self.stop()
            return False
        return True

    def _drawer(self, camera: str) -> Callable[[int], np.ndarray]:
        orchard = self.sources[camera].orchard

        def draw(_frame: int) -> np.ndarray:
            return orchard.render(datetime.now(UTC))  # the real time of day: dusk, night, the night's visitor

        return draw

    def site_file(self, shipped_site: str) -> Path:
        """The demo's own site file: the shipped one with the synthetic cameras as this server's rtsp cameras."""
        assert self.server is not None
        site_dir = self.folder / "demo-site"
        shutil.rmtree(site_dir, ignore_errors=True)
        shutil.copytree(SHIPPED / shipped_site, site_dir)
        path = site_dir / "site.toml"
        urls = {c.id: self.server.url(c.id) for c in self.cameras}
        path.write_text(rtsp_site_text(path.read_text(encoding="utf-8"), urls), encoding="utf-8")
        return path

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        for f in self.feeds:
            f.close()


def demo_people(settings: Settings) -> None:
    """Each plot's owner as a farmer, one adviser covering every plot, one command-center user; inbox only."""
    site = site_for(settings)
    records = Records.open(settings)
    people = People(records)
    for p in site.plots:
        name = f"farmer-{p.id}"
        if people.get(name) is None:
            people.upsert(User(name, p.owner, Role.FARMER))
            people.set_plots(name, [p.id], "owns")
    if people.get("adviser") is None:
        people.upsert(User("adviser", "农技员 李明", Role.ADVISER))
        people.set_plots("adviser", [p.id for p in site.plots], "covers")
    if people.get("center") is None:
        people.upsert(User("center", "村指挥中心", Role.CENTER))
    records.close()


DEMO_SIGN_INS = ("center", "adviser", "farmer-p01")


def demo_accounts(settings: Settings) -> str:
    """Passwords for the demo's center, adviser and one farmer, made on the first run and kept (this is a demo) in
    <data_dir>/demo-accounts.txt, readable by its owner only; returns that file's text to print."""
    path = settings.data_dir / "demo-accounts.txt"
    records = Records.open(settings)
    accounts = Accounts(records, settings.dashboard)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    known = {line.split()[0] for line in lines if line.strip()}
    for name in DEMO_SIGN_INS:
        if name not in known or not accounts.has_password(name):
            password = secrets.token_urlsafe(9)
            accounts.set_password(name, password, time.time_ns())
            lines = [line for line in lines if not line.startswith(f"{name} ")] + [f"{name} {password}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    records.close()
    return "\n".join(f"  {line}" for line in lines)


def demo_lot(settings: Settings) -> None:
    """A first grower's lot on each grading line that never had one, so the line has fruit to grade."""
    site = site_for(settings)
    records = Records.open(settings)
    lots = Lots(records, site)
    for i, line in enumerate(site.lines):
        if not lots.history(line=line.id, limit=1):
            lots.start(line.id, site.plots[i % len(site.plots)].id, "demo", note="演示批次 / demo lot")
    records.close()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
        time.sleep(0.1)
    return False


def run_demo(*, port: int, backfill_days: int, mqtt_port: int | None = None) -> None:
    env = dict(os.environ)
    data_dir = Path(env.get("ORCHARD_DATA_DIR", "./orchard-data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["ORCHARD_DATA_DIR"] = str(data_dir)
    env.setdefault("ORCHARD_STORE_URL", f"sqlite:///{data_dir}/timeseries.sqlite")
    env.setdefault("ORCHARD_UNKNOWN_DEVICES", "accept")
    env.setdefault("ORCHARD_NOTIFY__PUBLIC_URL", f"http://localhost:{port}")
    env.setdefault("ORCHARD_NOTIFY__LINK_SECRET", secrets.token_urlsafe(24))  # links of this demo run only
    orchard = [sys.executable, "-m", "app"]
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = threading.Event()
    streams: DemoStreams | None = None

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        # Each service in a process group of its own, so stopping it reaches everything it started (the ingest
        # writer, Streamlit's server) however the demo itself was told to stop: Ctrl-C in a terminal, or SIGINT or
        # SIGTERM sent to this process alone.
        proc = subprocess.Popen([*orchard, *args], env=env, start_new_session=True)
        children.append((name, proc))
        return proc

    def stop_all(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        if "ORCHARD_MQTT_URL" not in os.environ:
            mqtt_port = mqtt_port or (1883 if _port_free(1883) else free_port())
            spawn("broker", "broker", "--port", str(mqtt_port))
            if not _wait_port(mqtt_port, 15):
                raise SystemExit("内置 MQTT 代理未能启动 / the embedded MQTT broker did not start")
            env["ORCHARD_MQTT_URL"] = f"mqtt://127.0.0.1:{mqtt_port}"
            env["ORCHARD_MQTT_PROTOCOL"] = "3.1.1"  # amqtt speaks MQTT 3.1.1 only
        if backfill_days:
            print(f"正在回填 {backfill_days} 天历史数据 / backfilling {backfill_days} days ...", flush=True)
            backfill = spawn("backfill", "simulate", "--backfill-days", str(backfill_days))
            while backfill.poll() is None and not stopping.wait(0.2):
                pass
            if stopping.is_set():
                return
            children.remove(("backfill", backfill))
            if backfill.returncode != 0:
                raise SystemExit(f"回填失败 / backfill failed (exit {backfill.returncode})")
        env.setdefault("ORCHARD_DASHBOARD__KIOSK_SECRET", secrets.token_urlsafe(24))  # wall links of this run
        demo_people(Settings(data_dir=data_dir, store_url=env["ORCHARD_STORE_URL"]))
        sign_ins = demo_accounts(Settings(data_dir=data_dir, store_url=env["ORCHARD_STORE_URL"]))
        wall = sign_screen(int(time.time()) + 7 * 86400, env["ORCHARD_DASHBOARD__KIOSK_SECRET"])
        demo_lot(Settings(data_dir=data_dir, store_url=env["ORCHARD_STORE_URL"]))
        if "ORCHARD_SITE_FILE" not in os.environ:
            streams = DemoStreams(Settings(data_dir=data_dir, store_url=env["ORCHARD_STORE_URL"]), data_dir)
            if streams.start():
                env["ORCHARD_SITE_FILE"] = str(streams.site_file(env.get("ORCHARD_SITE", "sunzigou")))
                print(f"演示摄像头实时视频 / the demo cameras stream live: {len(streams.cameras)} on "
                      f"{streams.server.url('') if streams.server else ''}", flush=True)
        spawn("ingest", "ingest")
        spawn("simulate", "simulate")
        spawn("cameras", "cameras")
        spawn("grading", "grading")
        spawn("analytics", "analytics")
        spawn("dashboard", "dashboard", "--port", str(port))
        print(f"\n智慧果园指挥中心已启动 / command center running: http://localhost:{port}\n"
              f"登录账号 / sign in as (user password; also in {data_dir / 'demo-accounts.txt'}):\n{sign_ins}\n"
              f"大屏 / wall screen: http://localhost:{port}/?kiosk={wall}\n"
              f"MQTT: {redact_url(env['ORCHARD_MQTT_URL'])}  store: {redact_url(env['ORCHARD_STORE_URL'])}\n"
              "按 Ctrl-C 停止 / Ctrl-C stops",
              flush=True)
        while not stopping.wait(1):
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} 已退出 / exited with {proc.returncode}; 正在停止 / stopping", flush=True)
                    stopping.set()
    finally:
        stop_children([proc for _, proc in reversed(children)])
        if streams is not None:
            streams.stop()


def stop_children(procs: list[subprocess.Popen[bytes]], timeout_s: float = 15) -> None:
    """SIGTERM to each child's whole process group (newest first), then SIGKILL to any group still there."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        _signal_group(proc, signal.SIGKILL)  # whatever of the group is left (a grandchild that ignored SIGTERM)
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
