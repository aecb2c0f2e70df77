"""Serving the dashboard: the Streamlit command line (`orchard dashboard`) and a managed server process on a free
loopback port (the browser tests and `orchard bench dashboard`)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from orchard.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


APP = Path(__file__).resolve().parent / "app.py"  # the pages (what AppTest runs)
ASGI = Path(__file__).resolve().parent / "asgi.py"  # the pages with the sign-in cookie's routes (what a browser gets)


def streamlit_argv(port: int, address: str = "127.0.0.1", secrets_file: Path | None = None) -> list[str]:
    argv = [sys.executable, "-m", "dashboard.serve", "run", str(ASGI), "--server.port", str(port), "--server.headless",
            "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]  # no Deploy button or developer menu, for anyone
    if secrets_file is not None:
        argv += ["--secrets.files", str(secrets_file)]
    return [*argv, "--server.address", address]  # never Streamlit's default (every interface) by accident


def oidc_secrets(settings: Settings) -> Path | None:
    """st.login reads its identity provider from a secrets.toml; ours come from the environment like every other
    secret, so the dashboard writes that file at start (owner-only) in the data dir. None without single sign-on."""
    cfg = settings.dashboard
    if not cfg.oidc:
        return None
    assert cfg.oidc_client_secret and cfg.oidc_cookie_secret
    body = {
        "redirect_uri": settings.notify.public_url.rstrip("/") + "/oauth2callback",
        "cookie_secret": cfg.oidc_cookie_secret.get_secret_value(),
    }
    provider = {"client_id": cfg.oidc_client_id, "client_secret": cfg.oidc_client_secret.get_secret_value(),
                "server_metadata_url": cfg.oidc_metadata_url}
    lines = ["[auth]", *(f"{k} = {json.dumps(v)}" for k, v in body.items()), "", "[auth.county]",
             *(f"{k} = {json.dumps(v)}" for k, v in provider.items())]
    path = settings.data_dir / ".dashboard-secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def listeners(port: int) -> set[int]:
    """The processes listening on a loopback TCP port (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{cols[9]}]")
    pids = set()
    for fds in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in fds.iterdir()):
                pids.add(int(fds.parent.name))
    return pids


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


class DashboardServer:
    """`streamlit run dashboard/asgi.py` with the given environment (or another command that serves it on
    `port`, such as `orchard dashboard`), until it answers its health check, from its own process: when another
    test's server got the same free port first (two pytest workers picking at once), a fresh port is tried (only
    for the default command; a given argv names its port)."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int, argv: list[str] | None = None) -> None:
        self.log_path = log_path
        for _ in range(5):
            self.port = port
            if self._start(env, argv):
                return
            if argv is not None:
                raise RuntimeError(f"port {port} is served by another process")
            port = free_port()
        raise RuntimeError("no free port for the dashboard after 5 tries")

    def _start(self, env: dict[str, str], argv: list[str] | None) -> bool:
        """True once this process serves; False when another one answers on the port."""
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(argv or streamlit_argv(self.port, "127.0.0.1"), env={**os.environ, **env},
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    if any(_descends(pid, self.proc.pid) for pid in listeners(self.port)):
                        return True
                    self.stop()
                    return False
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dashboard did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        for row in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
        raise RuntimeError("no VmRSS for the dashboard process")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
