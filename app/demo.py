"""`orchard demo`: the whole system on one machine, no Docker, no system packages.

Order: embedded broker (unless ORCHARD_MQTT_URL is set) -> backfill of the store (SQLite unless ORCHARD_STORE_URL
is set) -> demo people (each plot's owner as a farmer, an adviser, the command center; messages to their in-app
inbox) -> ingest -> live simulator -> analytics -> dashboard. Each runs as its own `orchard <service>` process, as in
production; Ctrl-C stops them all, newest first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.servers import free_port
from orchard.links import sign_screen
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.lots import Lots
from orchard.records.people import People, Role, User
from orchard.redact import redact_url
from orchard.settings import Settings
from orchard.site import site_for


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
