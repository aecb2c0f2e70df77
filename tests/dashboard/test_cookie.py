"""The sign-in cookie's route and one-time codes (dashboard/cookie.py): a code is good once, in time, for the
address that signed in; the cookie it sets is HttpOnly, SameSite=Lax, and Secure behind HTTPS (the public
address, or X-Forwarded-Proto from a trusted proxy only); /auth/forget drops only a cookie whose session is over.
The browser journeys (tests/integration/test_journeys.py) show it keeping people signed in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import cookie
from dashboard.cookie import COOKIE, HANDOFF_S, HANDOFFS, Handoffs
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.people import People, User
from orchard.settings import DashboardSettings


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("client", "after_s", "got"), [
    ("10.0.0.1", 0, ("token-1", 3600)),
    ("10.0.0.1", HANDOFF_S - 1, ("token-1", 3600)),
    ("10.0.0.1", HANDOFF_S + 1, None),  # stale
    ("10.0.0.2", 0, None),  # another address than the one that signed in
], ids=["at once", "within", "stale", "another address"])
def test_a_handoff_code_is_good_once_for_its_address_in_time(client: str, after_s: float,
                                                             got: tuple[str, int] | None) -> None:
    clock = Clock()
    codes = Handoffs(clock)
    code = codes.issue("token-1", "10.0.0.1", 3600)
    assert codes.pending(code)
    clock.t += after_s
    assert codes.redeem(code, client) == got
    assert codes.redeem(code, "10.0.0.1") is None  # never twice, whoever asks
    assert not codes.pending(code)
    assert codes.redeem("made-up", "10.0.0.1") is None


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORCHARD_STORE_URL", f"sqlite:///{tmp_path}/ts.sqlite")
    monkeypatch.setenv("ORCHARD_DASHBOARD__TRUSTED_PROXIES", '["10.9.0.1"]')
    cookie._settings.cache_clear()
    cookie._accounts.cache_clear()
    yield tmp_path
    cookie._settings.cache_clear()
    cookie._accounts.cache_clear()


def bound(client: TestClient, headers: dict[str, str] | None = None, issued_to: str = "testclient") -> str:
    """The Set-Cookie header /auth/bind answers a fresh code with."""
    code = HANDOFFS.issue("the-token", issued_to, 3600)
    r = client.get(f"/auth/bind?code={code}", headers=headers or {})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    return r.headers.get("set-cookie", "")


@pytest.mark.parametrize(("public_url", "headers", "peer", "secure"), [
    ("http://127.0.0.1:8501", {}, "testclient", False),
    ("https://orchard.example.cn", {}, "testclient", True),
    ("http://127.0.0.1:8501", {"X-Forwarded-Proto": "https"}, "testclient", False),  # not a trusted proxy
    ("http://127.0.0.1:8501", {"X-Forwarded-Proto": "https", "X-Real-IP": "203.0.113.7"}, "10.9.0.1", True),
], ids=["http", "https public address", "anyone's header", "trusted proxy's header"])
def test_the_cookie_is_httponly_lax_and_secure_behind_https(routes: Path, monkeypatch: pytest.MonkeyPatch,
                                                           public_url: str, headers: dict[str, str], peer: str,
                                                           secure: bool) -> None:
    monkeypatch.setenv("ORCHARD_NOTIFY__PUBLIC_URL", public_url)
    client = TestClient(Starlette(routes=cookie.routes()), client=(peer, 50000))
    browser = headers.get("X-Real-IP", peer)
    set_cookie = bound(client, headers, issued_to=browser)
    assert set_cookie.startswith(f"{COOKIE}=the-token;")
    parts = {p.strip().split("=")[0].lower() for p in set_cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= parts and "samesite=lax" in set_cookie.lower()
    assert ("secure" in parts) is secure


def test_a_code_for_another_address_sets_nothing(routes: Path) -> None:
    client = TestClient(Starlette(routes=cookie.routes()))
    assert bound(client, issued_to="198.51.100.9") == ""
    assert client.get("/auth/bind?code=made-up").headers.get("set-cookie") is None


def test_forget_drops_only_an_ended_sessions_cookie(routes: Path) -> None:
    records = Records.in_data_dir(routes)
    People(records).upsert(User("wang", "王建国", "farmer"))
    accounts = Accounts(records, DashboardSettings())
    session = accounts.open_session("wang", time.time_ns())
    client = TestClient(Starlette(routes=cookie.routes()))
    client.cookies.set(COOKIE, session.token)
    assert client.get("/auth/forget").headers.get("set-cookie") is None  # still signed in: another site cannot
    accounts.logout(session.token)
    dropped = client.get("/auth/forget").headers.get("set-cookie", "")
    assert dropped.startswith(f'{COOKIE}="";') and "max-age=0" in dropped.lower()
    records.close()
