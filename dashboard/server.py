"""Serving the dashboard: the Streamlit command line (`orchard dashboard`) and a managed server process on a free
loopback port (the browser tests and `orchard bench dashboard`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from orchard.settings import Settings

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


class DashboardServer:
    """`streamlit run dashboard/app.py` with the given environment (or another command that serves it on
    `port`, such as `orchard dashboard`), until it answers its health check."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int, argv: list[str] | None = None) -> None:
        self.port, self.log_path = port, log_path
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(argv or streamlit_argv(port, "127.0.0.1"), env={**os.environ, **env},
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dashboard did not start: {log_path.read_text()[-2000:]}")
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
