"""What the dashboard exposes to the network: it listens on loopback unless told otherwise, and the browser's
address for the sign-in limit comes from a header only when a trusted reverse proxy sent it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.servers import free_port
from dashboard.address import client_address
from dashboard.server import DashboardServer
from orchard.settings import DashboardSettings

PROXY = ("172.16.0.0/12", "127.0.0.1")


@pytest.mark.parametrize(("peer", "headers", "seen"), [
    ("203.0.113.9", {}, "203.0.113.9"),
    ("203.0.113.9", {"X-Real-Ip": "10.1.1.1"}, "203.0.113.9"),  # a stranger cannot pick a fresh address per try
    ("203.0.113.9", {"X-Forwarded-For": "10.1.1.1"}, "203.0.113.9"),
    ("172.18.0.1", {"X-Real-Ip": "198.51.100.7"}, "198.51.100.7"),  # the proxy on the docker bridge says who
    ("127.0.0.1", {"x-forwarded-for": "10.9.9.9, 198.51.100.8"}, "198.51.100.8"),  # the proxy's own hop, last
    ("172.18.0.1", {}, "172.18.0.1"),  # a trusted proxy that says nothing: itself
    (None, {"X-Real-Ip": "198.51.100.7"}, "unknown"),
])
def test_the_client_address_believes_only_trusted_proxies(peer: str | None, headers: dict[str, str],
                                                           seen: str) -> None:
    assert client_address(peer, headers, PROXY) == seen


def test_a_trusted_proxy_setting_must_be_an_address_or_network() -> None:
    with pytest.raises(ValueError, match="not an address or a network"):
        DashboardSettings(trusted_proxies=("the proxy",))


def listening(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                out.add(address)
    return out


def test_orchard_dashboard_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHARD_")}
    env |= {"ORCHARD_DATA_DIR": str(tmp_path), "ORCHARD_STORE_URL": f"sqlite:///{tmp_path}/ts.sqlite"}
    command = [sys.executable, "-m", "app", "dashboard", "--port", str(port)]
    with DashboardServer(env, tmp_path / "dashboard.log", port, command):
        assert listening(port) == {"0100007F"}  # 127.0.0.1, nothing on 0.0.0.0 or ::
