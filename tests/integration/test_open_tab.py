"""An open tab whose sign-in ended: the command center's self-refreshing part, driven over Streamlit's websocket
protocol against a real `streamlit run`, stops streaming data as soon as its wall link expires or its user is
disabled, and shows the sign-in form (or the link's message) instead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.dashboard import Session
from bench.servers import free_port
from dashboard.server import DashboardServer
from dashboard.signin import RECHECK_S
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.people import People, User
from orchard.settings import DashboardSettings
from tests.conftest import KIOSK_SECRET, kiosk_link
from tests.dashboard.conftest import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = ("metric", "plotly_chart", "imgs")  # what the command center's live part streams
PASSWORD = "a-long-password-for-the-tab"


SESSION_S = 25  # the sign-in's absolute expiry in the expiry test: a first render and a refresh fit in it


def serve(tmp_path: Path, **extra: str) -> DashboardServer:
    url = f"sqlite:///{tmp_path}/ts.sqlite"
    seed(tmp_path, url, 0.05, time.time())
    records = Records.in_data_dir(tmp_path)
    People(records).upsert(User("zhao", "赵主任", "center"))
    Accounts(records, DashboardSettings()).set_password("zhao", PASSWORD, time.time_ns())
    records.close()
    env = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(tmp_path), "ORCHARD_DASHBOARD__REFRESH_S": "5",
           "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET, **extra}
    return DashboardServer(env, tmp_path / "dashboard.log", free_port())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DashboardServer]:
    with serve(tmp_path) as s:
        yield s


def test_a_wall_tab_stops_when_its_link_expires(server: DashboardServer) -> None:
    tab = Session(server.port)
    expires = time.time() + 30  # long enough for a first render and a refresh on a loaded machine
    first = tab.render({"kiosk": kiosk_link(expires_in_s=30)})
    assert first.elements["metric"] and not first.errors
    assert tab.refresh_fragment().elements["metric"]  # live while the link holds
    time.sleep(max(0.0, expires - time.time()) + 1.1)  # the link's own expiry (seconds, signed into it)
    after = tab.refresh_fragment()
    assert not any(after.elements[k] for k in DATA), after.elements
    assert any("大屏链接已过期" in e for e in after.errors)
    tab.close()


@pytest.mark.parametrize(("page", "live", "least"), [
    ("", "metric", 1),  # the command center's tiles
    ("cameras", "button", 2),  # a camera tile's "open" buttons (the sign-in form has one button)
    ("grading", "metric", 1),  # the grading line's live tiles
], ids=["command-center", "cameras", "grading"])
def test_a_signed_in_tab_stops_when_its_user_is_disabled(server: DashboardServer, tmp_path: Path, page: str,
                                                         live: str, least: int) -> None:
    tab = Session(server.port)
    tab.sign_in("zhao", PASSWORD)
    assert tab.render({}, page).elements[live] >= least
    assert tab.refresh_fragment().elements[live] >= least
    records = Records.in_data_dir(tmp_path)
    People(records).upsert(User("zhao", "赵主任", "center", active=False))  # `orchard admin user disable zhao`
    Accounts(records, DashboardSettings()).end_sessions("zhao")
    records.close()
    disabled = time.monotonic()
    while True:  # within RECHECK_S the tab's next refresh shows the sign-in form instead of data
        r = tab.refresh_fragment()
        if r.elements[live] < least:
            break
        assert time.monotonic() - disabled < RECHECK_S + 5, "the tab kept streaming after the user was disabled"
    assert r.elements["text_input"] == 2  # the sign-in form
    tab.close()


def test_a_signed_in_tab_stops_when_its_session_expires(tmp_path: Path) -> None:
    with serve(tmp_path, ORCHARD_DASHBOARD__SESSION_HOURS=str(SESSION_S / 3600)) as server:
        tab = Session(server.port)
        signed_in = time.time()
        assert tab.sign_in("zhao", PASSWORD).elements["metric"]
        assert tab.refresh_fragment().elements["metric"]  # live while the sign-in lasts
        time.sleep(max(0.0, signed_in + SESSION_S - time.time()) + 0.5)
        while True:  # within RECHECK_S of the expiry the tab's next refresh shows the sign-in form
            r = tab.refresh_fragment()
            if not any(r.elements[k] for k in DATA):
                break
            assert time.time() - signed_in < SESSION_S + RECHECK_S + 5, "the tab outlived its session"
        assert r.elements["text_input"] == 2
        tab.close()


def test_only_the_command_center_may_clear_the_servers_caches(server: DashboardServer) -> None:
    """Any websocket can send Streamlit's clear_cache; it would make every page slow for everyone."""
    stranger = Session(server.port)
    stranger.render({})  # not signed in: the sign-in form
    stranger.clear_caches()
    center = Session(server.port)
    center.sign_in("zhao", PASSWORD)
    center.clear_caches()
    said = server.log_path.read_text(errors="replace")
    deadline = time.monotonic() + 10
    while "event=cache_cleared" not in said:  # the center's, logged after the stranger's refusal
        assert time.monotonic() < deadline, said[-2000:]
        time.sleep(0.1)
        said = server.log_path.read_text(errors="replace")
    assert said.count("event=clear_cache_refused") == 1 and said.count("event=cache_cleared") == 1
    metrics = httpx.get(f"{server.url}/_stcore/metrics", timeout=5)
    assert "cache_memory_bytes" not in metrics.text, metrics.text[:300]  # no cache names for anyone
    for s in (stranger, center):
        s.close()
