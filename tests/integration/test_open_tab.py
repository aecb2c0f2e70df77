"""An open tab whose sign-in ended: the command center's self-refreshing part, driven over Streamlit's websocket
protocol against a real `streamlit run`, stops streaming data as soon as its wall link expires or its user is
disabled, and shows the sign-in form (or the link's message) instead."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

from dashboard.bench import Render, Session
from dashboard.server import DashboardServer
from dashboard.signin import RECHECK_S
from orchard.accounts import Accounts
from orchard.localservers import free_port
from orchard.people import People, User
from orchard.records import Records
from orchard.settings import DashboardSettings
from tests.conftest import KIOSK_SECRET, kiosk_link
from tests.dashboard.conftest import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = ("metric", "plotly_chart", "imgs")  # what the command center's live part streams
PASSWORD = "a-long-password-for-the-tab"


class SignedIn(Session):
    """A tab that signs in through the page's own form (the ids of its widgets as the server sent them)."""

    def sign_in(self, user: str, password: str) -> Render:
        self.render({})
        ids = self.form_ids
        states = [WidgetState(id=ids["user"], string_value=user), WidgetState(id=ids["password"],
                                                                              string_value=password),
                  WidgetState(id=ids["go"], trigger_value=True)]
        self._send(BackMsg(rerun_script=ClientState(query_string=urlencode({}), page_script_hash=self.page_hash,
                                                    widget_states=WidgetStates(widgets=states))))
        while True:  # the form's run ends early for the rerun that shows the page
            r = self._until_finished(time.perf_counter())
            if r.elements["metric"]:
                return r

    def _until_finished(self, t0: float) -> Render:
        # Remember the sign-in form's widget ids on the way (the base class counts elements only).
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
                if name == "text_input":
                    self.form_ids["password" if el.text_input.type == el.text_input.PASSWORD else "user"] = (
                        el.text_input.id)
                elif name == "button" and el.button.is_form_submitter:
                    self.form_ids["go"] = el.button.id
                elif name == "alert":
                    out.errors.append(el.alert.body)
            elif kind == "script_finished":
                out.seconds = time.perf_counter() - t0
                return out

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.form_ids: dict[str, str] = {}


@pytest.fixture
def server(tmp_path: Path) -> DashboardServer:
    url = f"sqlite:///{tmp_path}/ts.sqlite"
    seed(tmp_path, url, 0.05, time.time())
    records = Records.in_data_dir(tmp_path)
    People(records).upsert(User("zhao", "赵主任", "center"))
    Accounts(records, DashboardSettings()).set_password("zhao", PASSWORD, time.time_ns())
    records.close()
    env = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(tmp_path), "ORCHARD_DASHBOARD__REFRESH_S": "5",
           "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET}
    with DashboardServer(env, tmp_path / "dashboard.log", free_port()) as s:
        yield s


def test_a_wall_tab_stops_when_its_link_expires(server: DashboardServer) -> None:
    tab = Session(server.port)
    expires = time.time() + 10
    first = tab.render({"kiosk": kiosk_link(expires_in_s=10)})
    assert first.elements["metric"] and not first.errors
    assert tab.refresh_fragment().elements["metric"]  # live while the link holds
    time.sleep(max(0.0, expires - time.time()) + 1.1)  # the link's own expiry (seconds, signed into it)
    after = tab.refresh_fragment()
    assert not any(after.elements[k] for k in DATA), after.elements
    assert any("大屏链接已过期" in e for e in after.errors)
    tab.close()


def test_a_signed_in_tab_stops_when_its_user_is_disabled(server: DashboardServer, tmp_path: Path) -> None:
    tab = SignedIn(server.port)
    assert tab.sign_in("zhao", PASSWORD).elements["metric"]
    assert tab.refresh_fragment().elements["metric"]
    records = Records.in_data_dir(tmp_path)
    People(records).upsert(User("zhao", "赵主任", "center", active=False))  # `orchard admin user disable zhao`
    Accounts(records, DashboardSettings()).end_sessions("zhao")
    records.close()
    disabled = time.monotonic()
    while True:  # within RECHECK_S the tab's next refresh shows the sign-in form instead of data
        r = tab.refresh_fragment()
        if not any(r.elements[k] for k in DATA):
            break
        assert time.monotonic() - disabled < RECHECK_S + 5, "the tab kept streaming after the user was disabled"
    assert r.elements["text_input"] == 2  # the sign-in form
    tab.close()
