"""Real servers for the tests: Debian's Mosquitto and InfluxDB on free loopback ports in temp dirs.

A missing server skips on a developer laptop but fails in CI (CI=true): a green CI run never hides one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bench.servers import InfluxDB, Mosquitto, Postgres, RtspServer, ServerMissing
from orchard.links import sign_screen
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.people import People, Role, User
from orchard.settings import DashboardSettings
from orchard.store import TimeSeriesStore, open_store
from tests.fakes.influx2 import Influx2V1


@pytest.fixture(autouse=True)
def _no_orchard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's or CI's own ORCHARD_* settings never leak into a test: each sets what it needs."""
    for key in [k for k in os.environ if k.startswith("ORCHARD_")]:
        monkeypatch.delenv(key)


SERVERS = frozenset({"mosquitto", "own_mosquitto", "influx", "own_influx", "influx_auth", "postgres", "own_postgres",
                     "rtsp"})


@pytest.fixture(autouse=True)
def _servers_are_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that started or used a real server (directly, through a parametrized fixture or getfixturevalue)
    is marked integration, so `-m "not integration"` really runs without servers."""
    yield
    used = SERVERS & set(request.fixturenames)
    if used and request.node.get_closest_marker("integration") is None:
        pytest.fail(f"{request.node.nodeid} uses {', '.join(sorted(used))}: mark it integration", pytrace=False)


def _missing(e: ServerMissing) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{e}: CI must have every test server")
    pytest.skip(str(e))


S = TypeVar("S", InfluxDB, Mosquitto, Postgres)


def _running(make: Callable[[], S]) -> Iterator[S]:
    """The server made and started for the fixture's scope; a missing binary skips, or fails in CI."""
    try:
        server = make()
    except ServerMissing as e:
        _missing(e)
    with server:
        yield server


@pytest.fixture(scope="session")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    yield from _running(lambda: InfluxDB(tmp_path_factory.mktemp("influx")))


@pytest.fixture(scope="session")
def influx_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    yield from _running(lambda: InfluxDB(tmp_path_factory.mktemp("influx-auth"),
                                         auth=("orchard-admin", "s3cret pass'\"")))


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the session: tests keep apart by unique topics and client ids."""
    yield from _running(lambda: Mosquitto(tmp_path_factory.mktemp("mosquitto")))


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that stop or restart it."""
    yield from _running(lambda: Mosquitto(tmp_path / "mosquitto"))


@pytest.fixture
def own_influx(tmp_path: Path) -> Iterator[InfluxDB]:
    """An InfluxDB of the test's own, for tests that stop or restart it."""
    yield from _running(lambda: InfluxDB(tmp_path / "influx"))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    yield from _running(lambda: Postgres(tmp_path_factory.mktemp("postgres")))


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Postgres]:
    """A PostgreSQL of the test's own, for tests that stop, kill or restart it."""
    yield from _running(lambda: Postgres(tmp_path / "postgres"))


@pytest.fixture
def rtsp(tmp_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """Start a real RTSP server (Debian's GStreamer RTSP server, bench/rtsp_server.py) with the mounts given:
    `rtsp({"cam": "test"})`; stopped at the end of the test. Missing packages skip, or fail in CI."""
    started: list[RtspServer] = []

    def start(mounts: dict[str, str], **kw: Any) -> RtspServer:
        try:
            server = RtspServer(tmp_path / f"rtsp{len(started)}", mounts, **kw)
        except ServerMissing as e:
            _missing(e)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


INTEGRATION = pytest.mark.integration


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=INTEGRATION)])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Records]:
    """The records database, fresh and migrated, on each backend."""
    if request.param == "sqlite":
        r = Records(f"sqlite:///{tmp_path}/records.sqlite")
    else:
        r = Records(request.getfixturevalue("postgres").fresh_database(unique("rec")))
    yield r
    r.close()


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def influx_url(server: InfluxDB, database: str) -> str:
    return server.url.rsplit("/", 1)[0] + "/" + database


def influx2_store(server: InfluxDB, token: str = "t0ken-2x") -> tuple[TimeSeriesStore, Influx2V1]:
    """The InfluxDB adapter talking to the 2.x v1-API fake (tests/fakes/influx2.py) in front of the 1.x server:
    a fresh bucket mapped (DBRP) to a fresh 1.x database, token auth."""
    from orchard.settings import parse_store_url
    from orchard.store.influx import InfluxStore

    bucket, real = unique("bucket"), unique("db")
    open_store(influx_url(server, real)).ensure_ready()  # 2.x: the bucket comes from the server's setup
    fake = Influx2V1(server.url.split("@")[-1].replace("influxdb://", "http://").rsplit("/", 1)[0], token,
                     {bucket: real})
    return InfluxStore(parse_store_url(f"influxdb://influxdb:8086/{bucket}?token={token}"), transport=fake), fake


@pytest.fixture(params=["sqlite", *(pytest.param(p, marks=INTEGRATION) for p in ("influxdb", "influxdb-auth",
                                                                                  "influxdb2-v1"))])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    """Every store adapter, fresh and empty: the contract suite runs once per adapter (and against the fake of
    InfluxDB 2.x's v1 API that production's influxdb:2.7 speaks)."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    elif request.param == "influxdb2-v1":
        s, _ = influx2_store(request.getfixturevalue("influx"))
    else:
        server = request.getfixturevalue("influx" if request.param == "influxdb" else "influx_auth")
        s = open_store(influx_url(server, unique("db")))
    s.ensure_ready()
    yield s
    s.close()


StoreFactory = Callable[[], TimeSeriesStore]


@pytest.fixture(autouse=True)
def _no_leftover_ingest() -> Iterator[None]:
    """A failing test must not leave an `orchard ingest` process behind."""
    yield
    from tests.integration.helpers import IngestProcess

    while IngestProcess.running:
        p = IngestProcess.running.pop()
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


@dataclass(frozen=True)
class Seeded:
    """A store and a data dir (registry, records) a dashboard runs against, and the moment it is judged at: the
    dashboard's clock (`dashboard.data.now_ns`) when set, so "online" and "today" do not depend on how long after
    the seeding a test runs, or on whether midnight fell between."""

    data_dir: Path
    store_url: str
    now_ns: int | None = None


APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


KIOSK_SECRET = "test-kiosk-secret-not-for-production"


def kiosk_link(expires_in_s: float = 3600, secret: str = KIOSK_SECRET) -> str:
    """A wall-screen token as `orchard admin kiosk-link` makes it (?kiosk=<token>)."""
    return sign_screen(int(time.time() + expires_in_s), secret)


def sign_in(data_dir: Path, user: str, role: Role | None = None, plots: tuple[str, ...] = ()) -> str:
    """A session token for a user of the seeded records (made with the role and plots when missing), as if they had
    signed in with their password."""
    records = Records.in_data_dir(data_dir)
    try:
        people = People(records)
        if people.get(user) is None:
            people.upsert(User(user, f"测试 {user}", role or "center", phone="13900000000"))
            if plots:
                people.set_plots(user, plots, "owns" if role == "farmer" else "covers")
        return Accounts(records, DashboardSettings()).open_session(user, time.time_ns()).token
    finally:
        records.close()


@pytest.fixture
def run_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    """Run the app (optionally switching to a page) against a seeded store, signed in as `who` (a user name: made a
    command-center user when missing; None: nobody signed in); fails on any exception."""

    def run(seeded: Seeded, page: str | None = None, who: str | None = "center", **query: str) -> AppTest:
        monkeypatch.setenv("ORCHARD_STORE_URL", seeded.store_url)
        monkeypatch.setenv("ORCHARD_DATA_DIR", str(seeded.data_dir))
        monkeypatch.setenv("ORCHARD_DASHBOARD__KIOSK_SECRET", KIOSK_SECRET)
        if seeded.now_ns is not None:
            frozen = seeded.now_ns
            monkeypatch.setattr("dashboard.data.now_ns", lambda: frozen)
        st.cache_data.clear()
        st.cache_resource.clear()  # settings, store and records are per server process; each test is one
        at = AppTest.from_file(str(APP), default_timeout=60)
        for k, v in query.items():
            at.query_params[k] = v
        if who is not None:
            at.session_state["auth_token"] = sign_in(seeded.data_dir, who)
        at.run()
        if page:
            at.switch_page(f"views/{page}.py")
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    yield run
    st.cache_data.clear()
    st.cache_resource.clear()
