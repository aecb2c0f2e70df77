"""The sign-in form of a real `streamlit run`, attacked over Streamlit's websocket protocol from loopback: a
stranger who names a fresh address in X-Real-IP for every try gets no fresh allowance, while a trusted proxy's
header is believed; a burst of 40 sign-ins at once checks at most the address's 20 passwords and does not take
the server's memory beyond a stated bound (argon2id needs 64 MiB per verification, at most HASHING at a time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.dashboard import Session
from bench.servers import free_port
from dashboard.server import DashboardServer
from orchard.records import Records
from orchard.records.accounts import HASHING
from orchard.records.people import People, User
from orchard.records.schema import login_attempts
from tests.dashboard.conftest import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BAD, PAUSED = "用户名或密码不对", "已暂停登录"
ARGON2_MIB = 64  # orchard.records.accounts' argon2id memory cost per verification


def start(tmp_path: Path, **settings: str) -> DashboardServer:
    url = f"sqlite:///{tmp_path}/ts.sqlite"
    seed(tmp_path, url, 0, time.time())
    records = Records.in_data_dir(tmp_path)
    People(records).upsert(User("wang", "王建国", "farmer"))
    records.close()
    env = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(tmp_path)}
    env |= {f"ORCHARD_DASHBOARD__{k.upper()}": v for k, v in settings.items()}
    return DashboardServer(env, tmp_path / "dashboard.log", free_port())


def said(r: object) -> str:
    errors = getattr(r, "errors")  # noqa: B009 - a Render
    assert len(errors) == 1, errors
    return str(errors[0])


def attempts(tmp_path: Path) -> list[tuple[str, str, bool]]:
    records = Records.in_data_dir(tmp_path)
    la = login_attempts
    with records.engine.connect() as conn:
        rows = conn.execute(select(la.c.user, la.c.client, la.c.ok).order_by(la.c.id)).all()
    records.close()
    return [(r.user, r.client, bool(r.ok)) for r in rows]


@pytest.mark.parametrize(("trusted", "counted_as"), [
    ("[]", lambda k: "127.0.0.1"),  # nobody trusted: the connection's own address, whatever the header says
    ('["127.0.0.1"]', lambda k: f"198.51.100.{k}"),  # a proxy on this host: its header names the browser
], ids=["stranger", "trusted-proxy"])
def test_x_real_ip_counts_only_from_a_trusted_proxy(tmp_path: Path, trusted: str, counted_as: object) -> None:
    with start(tmp_path, client_max_failures="3", trusted_proxies=trusted) as server:
        answers = []
        for k in range(1, 5):  # four wrong sign-ins, each for another account and "from" another address
            tab = Session(server.port, headers={"X-Real-IP": f"198.51.100.{k}"})
            answers.append(said(tab.sign_in(f"guess{k}", "wrong-password-1")))
            tab.close()
    if trusted == "[]":
        assert [BAD in a for a in answers[:3]] == [True] * 3 and PAUSED in answers[3]  # the 4th waits
    else:
        assert [BAD in a for a in answers] == [True] * 4  # four browsers, one try each
    assert attempts(tmp_path) == [(f"guess{k}", counted_as(k), False)  # type: ignore[operator]
                                  for k in range(1, 5 if trusted != "[]" else 4)]


def peak_rss_mib(server: DashboardServer) -> float:
    for row in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmHWM for the dashboard process")


@pytest.fixture
def tabs(tmp_path: Path) -> Iterator[tuple[DashboardServer, list[Session]]]:
    with start(tmp_path) as server:  # the defaults: 5 per account, 20 per address in 15 minutes
        opened = [Session(server.port) for _ in range(40)]
        for tab in opened:
            tab.render({})  # each tab shows the sign-in form
        yield server, opened
        for tab in opened:
            tab.close()


def test_a_burst_of_40_sign_ins_checks_20_and_stays_within_its_memory(tmp_path: Path,
                                                                       tabs: tuple[DashboardServer, list[Session]]
                                                                       ) -> None:
    server, opened = tabs
    before = peak_rss_mib(server)
    go, answers, lock = threading.Barrier(len(opened)), list[str](), threading.Lock()

    def attempt(k: int) -> None:
        go.wait()
        answer = said(opened[k].submit(f"guess{k}", "wrong-password-1"))
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(len(opened))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    grown = peak_rss_mib(server) - before
    assert sorted(BAD in a for a in answers) == [False] * 20 + [True] * 20
    assert len(attempts(tmp_path)) == 20  # the address's limit: 20 passwords checked, 20 told to wait
    bound = HASHING * ARGON2_MIB + 64  # the verifications at once, and 64 MiB for 40 sessions' runs
    print(f"peak RSS grew by {grown:.0f} MiB during the burst (bound {bound} MiB)")
    assert grown < bound
