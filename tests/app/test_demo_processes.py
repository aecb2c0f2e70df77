"""`orchard demo` stops everything it started, however it is told to stop: SIGINT or SIGTERM sent to the demo
process alone (a process manager, `kill`), not only a terminal's Ctrl-C that reaches the whole group. And
`orchard dashboard` is Streamlit's own process, so a signal sent to it reaches the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out.update(kids)
            todo += kids
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the dashboard never answered:\n" + log.read_text()[-3000:])


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHARD_")}
    return {**env, "ORCHARD_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stops_every_descendant_when_only_it_is_signalled(tmp_path: Path, sig: signal.Signals) -> None:
    port, log = free_port(), tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([sys.executable, "-m", "app", "demo", "--backfill-days", "0", "--port",
                                 str(port), "--mqtt-port", str(free_port())], env=environment(tmp_path),
                                # its own group: nothing but the demo hears the signal
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    started: set[int] = set()
    try:
        wait_healthy(port, demo, log)
        # The demo's cameras are real RTSP streams: the cameras service's ffmpeg is recording them.
        video = tmp_path / "data" / "video"
        deadline = time.monotonic() + 90
        while not any(len(list(d.glob("seg-*.ts"))) >= 2 for d in video.glob("cam-*")):
            assert time.monotonic() < deadline, "no demo camera was recorded:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        started = descendants(demo.pid)
        commands = {Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ") for p in started if alive(p)}
        assert any(b"dashboard.serve run" in c for c in commands) and any(b" ingest" in c for c in commands), commands
        assert any(b"rtsp_server.py" in c for c in commands) and any(c.startswith(b"ffmpeg") for c in commands)
        os.kill(demo.pid, sig)
        assert demo.wait(60) is not None
        left = [p for p in started if alive(p)]
        assert left == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        for p in started | descendants(demo.pid):  # what a broken demo left behind must not outlive the test
            if alive(p):
                os.kill(p, signal.SIGKILL)


def test_orchard_dashboard_is_the_streamlit_process(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app", "dashboard", "--port", str(port)],
                                env=environment(tmp_path), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(port, proc, log)
        assert b"dashboard.serve" in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # exec'd: no parent left between
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
