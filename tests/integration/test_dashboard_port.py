"""Two test servers that pick the same free port at once (two pytest workers): the second must not take the
first's health check for its own and talk to the other one's data; it moves to a fresh port and serves there."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port
from dashboard.server import DashboardServer, listeners
from tests.dashboard.conftest import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_port_taken_by_another_dashboard_is_not_taken_for_ours(tmp_path: Path) -> None:
    env = {}
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        url = f"sqlite:///{d}/ts.sqlite"
        seed(d, url, 0, time.time())
        env[name] = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(d)}
    port = free_port()
    with DashboardServer(env["a"], tmp_path / "a.log", port) as first, \
            DashboardServer(env["b"], tmp_path / "b.log", port) as second:
        assert first.port == port and second.port != port
        assert listeners(port) == {first.proc.pid} and listeners(second.port) == {second.proc.pid}
        assert httpx.get(f"{second.url}/_stcore/health", timeout=5).status_code == 200
