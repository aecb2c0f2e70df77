"""Serving the dashboard: the Streamlit command line (`orchard dashboard`) and a managed server process on a free
loopback port (the browser tests and `orchard bench dashboard`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_argv(port: int, address: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.headless",
            "true", "--browser.gatherUsageStats", "false"]
    return argv + (["--server.address", address] if address else [])


class DashboardServer:
    """`streamlit run dashboard/app.py` with the given environment, until it answers its health check."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        self.port, self.log_path = port, log_path
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(streamlit_argv(port, "127.0.0.1"), env={**os.environ, **env}, stdout=out,
                                         stderr=subprocess.STDOUT)
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
