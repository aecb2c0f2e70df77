"""`orchard bench dashboard`: how fast a real dashboard server renders against months of data, measured on the
server side through Streamlit's own websocket protocol, next to the bare InfluxDB time of the same queries.

1. InfluxDB is seeded with `days` of 1-minute data for `devices` devices (`orchard simulate --fast`).
2. `streamlit run dashboard/app.py` is started on a loopback port. A websocket client speaks the browser's
   protocol (BackMsg rerun_script -> ForwardMsg deltas ... script_finished), so a render is timed from the
   request to the server's "finished" message: script, queries, chart serialisation and transport.
3. First render: a new session with empty caches (a clear_cache message from another session first), median of
   `repeat`. Fragment refresh: the kiosk's live fragment rerun the way its run_every timer asks for it, with
   empty data caches (a wall screen refreshing every 30 s outlives the 15 s cache) and, for reference, cached.
4. Floor: the InfluxQL statements a page sends (recorded by running the page in-process with AppTest) posted
   straight to InfluxDB, the answer read but not parsed; median of `repeat`.
5. Memory: the server's RSS before and after `refreshes` fragment refreshes, each with empty data caches.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import httpx
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.servers import InfluxDB, free_port
from dashboard.server import APP, DashboardServer
from orchard.links import sign_screen
from orchard.logs import event, progress
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.people import People, Role, User
from orchard.settings import DashboardSettings, parse_store_url
from orchard.store.influx import InfluxStore

log = logging.getLogger("orchard.bench")
# The wall screen's signed link (orchard admin kiosk-link) under a key made for this run: both pages read as the
# kiosk, so no sign-in is timed.
KIOSK_SECRET = secrets.token_urlsafe(24)
KIOSK_LINK = sign_screen(int(time.time()) + 30 * 86400, KIOSK_SECRET)
CC_QUERY = {"kiosk": KIOSK_LINK}
ENV_PAGE, ENV_QUERY = "environment", {"range": "30d", "kiosk": KIOSK_LINK}


# -- seeding ------------------------------------------------------------------------------------------------
def seed(env: dict[str, str], devices: int, days: int) -> int:
    """`orchard simulate --backfill-days N --fast` (the sensors service writes the history); returns lines."""
    cmd = [sys.executable, "-m", "app", "simulate", "--devices", str(devices), "--backfill-days", str(days),
           "--fast"]
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr[-2000:])
    found = re.search(r"event=backfill_done .*\blines=(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"seeding failed ({done.returncode}): {done.stderr[-1000:]}")
    return int(found.group(1))


# -- the dashboard server and a client speaking its websocket protocol --------------------------------------
@dataclass
class Render:
    seconds: float
    elements: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)  # image URLs, as the browser would fetch them


class Session:
    """One browser tab, as far as the server can tell."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.ws: ClientConnection = connect(f"ws://127.0.0.1:{port}/_stcore/stream", max_size=None,
                                            subprotocols=[Subprotocol("streamlit")], open_timeout=30,
                                            additional_headers=headers)
        self.query = ""
        self.page_hash = ""
        self.fragment_id = ""
        self.form_ids: dict[str, str] = {}  # the sign-in form's widgets, as the server named them

    def _send(self, msg: BackMsg) -> None:
        self.ws.send(msg.SerializeToString())

    def _until_finished(self, t0: float) -> Render:
        out = Render(0.0)
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(self.ws.recv(timeout=120))
            kind = fm.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = fm.new_session.page_script_hash
            elif kind == "auto_rerun":
                self.fragment_id = fm.auto_rerun.fragment_id
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                name = el.WhichOneof("type") or "?"
                out.elements[name] += 1
                if name == "imgs":
                    out.media += [img.url for img in el.imgs.imgs]
                elif name == "text_input":
                    kind_of = "password" if el.text_input.type == el.text_input.PASSWORD else "user"
                    self.form_ids[kind_of] = el.text_input.id
                elif name == "button" and el.button.is_form_submitter:
                    self.form_ids["go"] = el.button.id
                if name == "exception":
                    out.errors.append(f"{el.exception.type}: {el.exception.message}")
                elif name == "alert" and el.alert.format == el.alert.ERROR:
                    out.errors.append(el.alert.body)
            elif kind == "script_finished":
                out.seconds = time.perf_counter() - t0
                if fm.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.rerun(): the run that follows is the answer
                if fm.script_finished not in (ForwardMsg.FINISHED_SUCCESSFULLY,
                                              ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
                    out.errors.append(f"script finished with status {fm.script_finished}")
                return out

    def render(self, query: dict[str, str], page: str = "") -> Render:
        self.query = urlencode(query)
        msg = BackMsg(rerun_script=ClientState(query_string=self.query, page_name=page))
        t0 = time.perf_counter()
        self._send(msg)
        return self._until_finished(t0)

    def refresh_fragment(self) -> Render:
        if not self.fragment_id:
            raise RuntimeError("the page has no self-refreshing fragment")
        msg = BackMsg(rerun_script=ClientState(query_string=self.query, page_script_hash=self.page_hash,
                                               fragment_id=self.fragment_id, is_auto_rerun=True))
        t0 = time.perf_counter()
        self._send(msg)
        return self._until_finished(t0)

    def sign_in(self, user: str, password: str) -> Render:
        """Through the page's own sign-in form, as a person would; returns the page shown after it."""
        self.render({})
        return self.submit(user, password)

    def submit(self, user: str, password: str) -> Render:
        """Fill in and send the sign-in form that the last render showed."""
        states = [WidgetState(id=self.form_ids["user"], string_value=user),
                  WidgetState(id=self.form_ids["password"], string_value=password),
                  WidgetState(id=self.form_ids["go"], trigger_value=True)]
        t0 = time.perf_counter()
        self._send(BackMsg(rerun_script=ClientState(query_string=self.query, page_script_hash=self.page_hash,
                                                    widget_states=WidgetStates(widgets=states))))
        return self._until_finished(t0)

    def clear_caches(self) -> None:
        """What the app menu's "Clear cache" sends: every st.cache_data and st.cache_resource of the server."""
        self._send(BackMsg(clear_cache=True))
        time.sleep(0.05)  # handled on the server's event loop, before any later message of another session

    def close(self) -> None:
        self.ws.close()


def _checked(r: Render, what: str, needs: dict[str, int]) -> Render:
    if r.errors:
        raise RuntimeError(f"{what} rendered errors: {r.errors[:3]}")
    short = {k: n for k, n in needs.items() if r.elements[k] < n}
    if short:
        raise RuntimeError(f"{what} lacks elements {short}; rendered {dict(r.elements)}")
    return r


CC_NEEDS = {"plotly_chart": 5, "metric": 6}  # map + four strips; six KPI tiles
ENV_NEEDS = {"plotly_chart": 4, "download_button": 2}  # two readings, dew point, VPD; CSV and Excel


def first_renders(port: int, control: Session, query: dict[str, str], page: str, needs: dict[str, int],
                  repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        control.clear_caches()
        s = Session(port)
        times.append(_checked(s.render(query, page), f"page {page or 'command-center'}", needs).seconds)
        s.close()
    return times


# -- the floor: the same InfluxQL, straight to InfluxDB -------------------------------------------------------
def page_statements(env: dict[str, str], query: dict[str, str], page: str | None) -> list[str]:
    """Run the page in-process with AppTest and record every InfluxQL statement it sends."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    statements: list[str] = []
    real = InfluxStore._query

    def recording(self: InfluxStore, statement: str) -> list[dict[str, Any]]:
        statements.append(statement)
        return real(self, statement)

    with mock.patch.dict(os.environ, env), mock.patch.object(InfluxStore, "_query", recording):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(APP), default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        if page:
            statements.clear()
            st.cache_data.clear()
            at.switch_page(f"views/{page}.py")
            at.run()
        if at.exception:
            raise RuntimeError(f"page {page} failed in AppTest: {[e.value for e in at.exception]}")
        st.cache_resource.clear()
    return statements


def bare_seconds(store_url: str, statements: list[str]) -> float:
    target = parse_store_url(store_url)
    with httpx.Client(base_url=target.base_url, timeout=120,
                      auth=(target.username, target.password or "") if target.username else None) as http:
        t0 = time.perf_counter()
        for q in statements:
            r = http.post("/query", data={"q": q, "db": target.database, "epoch": "ns"})
            r.raise_for_status()
            _ = r.content
        return time.perf_counter() - t0


# -- the run --------------------------------------------------------------------------------------------------
def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 4)


def run_bench(*, days: int, devices: int, repeat: int, refreshes: int, store_url: str | None,
              work_dir: Path | None, reseed: bool = True) -> dict[str, Any]:
    with ExitStack() as stack:
        tmp = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orchard-bench-dash-")))
        if store_url is None:
            influx = stack.enter_context(InfluxDB(tmp / "influxdb"))
            store_url = influx.url
        data_dir = tmp / "data"
        env = {"ORCHARD_STORE_URL": store_url, "ORCHARD_DATA_DIR": str(data_dir),
               "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET}

        t0 = time.perf_counter()
        lines = seed(env, devices, days) if reseed else 0
        seed_s = time.perf_counter() - t0
        event(log, "bench_seeded", lines=lines, seconds=round(seed_s, 1))

        cc_statements = page_statements(env, CC_QUERY, None)
        env_statements = page_statements(env, ENV_QUERY, ENV_PAGE)

        records = Records.in_data_dir(data_dir)  # the command center clears the caches (nobody else may)
        People(records).upsert(User("bench-center", "压测指挥中心", Role.CENTER))
        password = secrets.token_urlsafe(18)
        Accounts(records, DashboardSettings()).set_password("bench-center", password, time.time_ns())
        records.close()
        server = DashboardServer(env, tmp / "dashboard.log", free_port())
        stack.callback(server.stop)
        control = Session(server.port)
        stack.callback(control.close)
        control.sign_in("bench-center", password)
        _checked(Session(server.port).render(CC_QUERY), "warm-up", CC_NEEDS)  # imports, first connections

        cc_first = first_renders(server.port, control, CC_QUERY, "", CC_NEEDS, repeat)
        env_first = first_renders(server.port, control, ENV_QUERY, ENV_PAGE, ENV_NEEDS, repeat)
        event(log, "bench_first_renders", command_center_s=median(cc_first), environment_s=median(env_first))

        kiosk = Session(server.port)
        stack.callback(kiosk.close)
        _checked(kiosk.render(CC_QUERY), "kiosk", CC_NEEDS)
        cached = [_checked(kiosk.refresh_fragment(), "fragment", CC_NEEDS).seconds for _ in range(repeat)]
        cold = []
        for _ in range(repeat):
            control.clear_caches()
            cold.append(_checked(kiosk.refresh_fragment(), "fragment", CC_NEEDS).seconds)

        rss_start = server.rss_mb()
        rss_samples = []
        with progress() as bar:
            task = bar.add_task(f"{refreshes} fragment refreshes", total=refreshes)
            for i in range(refreshes):
                control.clear_caches()
                _checked(kiosk.refresh_fragment(), "fragment", CC_NEEDS)
                if i % 50 == 49:
                    rss_samples.append(round(server.rss_mb(), 1))
                bar.advance(task)
        rss_end = server.rss_mb()

        cc_floor = [bare_seconds(store_url, cc_statements) for _ in range(repeat)]
        env_floor = [bare_seconds(store_url, env_statements) for _ in range(repeat)]

        result = {
            "bench": "dashboard",
            "days": days,
            "devices": devices,
            "lines_seeded": lines,
            "seed_s": round(seed_s, 1),
            "repeat": repeat,
            "command_center_first_render_s": median(cc_first),
            "environment_first_render_s": median(env_first),
            "fragment_refresh_s": median(cold),
            "fragment_refresh_cached_s": median(cached),
            "influx_floor_s": median(cc_floor),
            "influx_floor_environment_s": median(env_floor),
            "influx_statements": {"command_center": len(cc_statements), "environment": len(env_statements)},
            "command_center_over_floor": round(median(cc_first) / max(median(cc_floor), 1e-9), 2),
            "environment_over_floor": round(median(env_first) / max(median(env_floor), 1e-9), 2),
            "refreshes": refreshes,
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_end, 1),
            "rss_every_50_mb": rss_samples,
            # The targets: first render <= 2 s, fragment refresh <= 0.5 s, memory steady (within 10%).
            "targets_met": max(median(cc_first), median(env_first)) <= 2.0 and median(cold) <= 0.5
            and rss_end <= rss_start * 1.1,
            "runs_s": {"command_center": [round(x, 3) for x in cc_first],
                       "environment": [round(x, 3) for x in env_first],
                       "fragment": [round(x, 3) for x in cold]},
        }
    print(json.dumps(result))
    return result
