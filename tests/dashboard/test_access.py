"""Access control on the dashboard, server side: a farmer never reaches another farmer's plot through any page, URL
parameter, export or data function; the wall screen shows no personal data; kiosk links that are expired or
altered are refused; the sign-in form's rate limit holds; hostile input in every field stays data.

The village: 王建国 (farmer-p01) owns p01; 李秀英's p02 is next door, with readings, a camera, an alarm, a work
order and a lot on the grading line. Nothing of p02 may reach farmer-p01.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.views import discover
from orchard.access import Forbidden, Principal
from orchard.county import one_village
from orchard.links import sign_screen
from orchard.models import CameraStatus, Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.notices import Audience, Draft, NoticeBook
from orchard.records.people import People, User
from orchard.records.workorders import WorkOrders
from orchard.settings import Settings
from orchard.site import site_for
from orchard.store import open_store
from tests.conftest import KIOSK_SECRET, Seeded, kiosk_link
from tests.dashboard.conftest import grade, seed

pytestmark = pytest.mark.integration
RunApp = Callable[..., AppTest]
NS = 1_000_000_000
FARMER = Principal("farmer-p01", "farmer", "王建国", ("p01",))
# Whatever names p02 or its people: none of it may appear anywhere a farmer-p01 page renders.
OTHERS = ("p02", "石板坡红阳园", "Shibanpo", "李秀英", "cam-p02", "石板坡主道", "13800000002")


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Seeded, dict[str, int]]]:
    d = tmp_path_factory.mktemp("access")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.2, time.time())
    settings = Settings(store_url=seeded.store_url, data_dir=d)
    records = Records.open(settings)
    people = People(records)
    people.upsert(User("farmer-p01", "王建国", "farmer", phone="13800000001"))
    people.set_plots("farmer-p01", ["p01"], "owns")
    people.upsert(User("farmer-p02", "李秀英", "farmer", phone="13800000002"))
    people.set_plots("farmer-p02", ["p02"], "owns")
    people.upsert(User("adviser", "李明", "adviser", phone="13800000003"))
    people.set_plots("adviser", ["p01", "p02"], "covers")
    people.upsert(User("center", "村指挥中心", "center"))
    now = time.time_ns()
    notices = NoticeBook(records, one_village(site_for(settings)))
    writer = people.get("center")
    assert writer is not None
    notices.send(writer, Draft("大湾红阳园：冬剪后喷铜", audience=Audience(people=("farmer-p01",))), now)
    notices.send(writer, Draft("石板坡红阳园：补种", "李秀英请到村委领苗", audience=Audience(people=("farmer-p02",))),
                 now)
    book = AlarmBook(records)
    mine, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                               {"plot": "p01", "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, "p01"), now)
    theirs, _ = book.fire(Signal("sunzigou", "plot:p02", "spring_frost", "critical", "alarm.spring_frost_text",
                                 {"plot": "p02", "temp_c": -2.4, "threshold_c": -1.5, "minutes": 40}, "p02"), now)
    book.ack(theirs.id, "farmer-p02", now)
    orders = WorkOrders(records, d / "photos")
    orders.open(plot="p01", title="大湾霜冻巡查", created_by="system", now_ns=now, assignee="adviser")
    orders.open(plot="p02", title="石板坡霜冻巡查", created_by="system", now_ns=now, assignee="adviser")
    store = open_store(seeded.store_url)
    store.write([CameraStatus("sunzigou", p, f"cam-{p}", now - 5 * NS, "ok", now - 600 * NS, 20.0, 9000, 100.0,
                              5.0, 50.0, 0.5).point() for p in ("p01", "p02")])
    store.close()
    mine_lot = grade(seeded, "p01", 20, end=True)
    their_lot = grade(seeded, "p02", 30, end=False)  # on the belt now
    records.close()
    yield seeded, {"my_alarm": mine.id, "their_alarm": theirs.id, "my_lot": mine_lot.id, "their_lot": their_lot.id}


def rendered(at: AppTest) -> str:
    """Everything a page put on screen or in a chart, a table, a widget's choices, a download."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "error", "warning", "info",
                 "success", "code", "json", "exception", "latex"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    parts += [f"{m.label} {m.value} {m.proto.delta} {m.proto.help}" for m in at.metric]
    parts += [e.value.to_csv() for e in at.dataframe] + [e.value.to_csv() for e in at.table]
    parts += [str(e.proto) for e in at.get("plotly_chart")]
    for kind in ("selectbox", "multiselect", "radio", "segmented_control", "select_slider"):
        parts += [" ".join(map(str, getattr(e, "options", []))) for e in at.get(kind)]
    parts += [str(e.proto) for e in at.get("download_button")] + [str(e.proto) for e in at.get("expander")]
    parts += [str(e.proto) for e in at.get("tab")]
    return "\n".join(parts)


def leaks(text: str) -> list[str]:
    # A chart's numbers travel as base64 (plotly's "bdata"): "p02" can turn up in those by chance, not as a plot.
    text = re.sub(r'bdata\\*"?:\\*"[A-Za-z0-9+/=]*', "bdata", text)
    return [x for x in OTHERS if x in text]


# -- every page, and every URL parameter a page reads, as farmer-p01 ----------------------------------------------
OWN = "大湾红阳园"  # farmer-p01's plot
# Each page with the URL parameters it reads, and what farmer-p01 must see there (so an empty page never passes).
PAGES: list[tuple[str, dict[str, str], str]] = [
    ("command_center", {}, OWN),
    ("environment", {}, OWN),
    ("environment", {"range": "7d"}, OWN),
    ("cameras", {}, OWN),
    ("cameras", {"camera": "cam-p02"}, OWN),
    ("grading", {}, OWN),
    ("alarms", {}, OWN),
    ("report", {}, OWN),
    ("my_orchard", {}, OWN),
    ("notices", {}, OWN),  # only the notices sent to them
    ("lot_report", {"lot": "{their_lot}"}, "没有这个批次"),  # the answer for a lot that does not exist
    ("lot_report", {"lot": "{my_lot}"}, OWN),
]


@pytest.mark.parametrize(("page", "query", "own"), PAGES,
                         ids=[f"{p}-{'-'.join(q.values()) or 'plain'}" for p, q, _ in PAGES])
def test_farmer_sees_only_their_own_plot(run_app: RunApp, village: tuple[Seeded, dict[str, int]], page: str,
                                         query: dict[str, str], own: str) -> None:
    seeded, ids = village
    at = run_app(seeded, page, who="farmer-p01", **{k: v.format(**ids) for k, v in query.items()})
    text = rendered(at)
    assert not leaks(text), f"{page} shows {leaks(text)} to farmer-p01"
    assert own in text


def test_farmer_pages_show_their_own_things(run_app: RunApp, village: tuple[Seeded, dict[str, int]]) -> None:
    seeded, ids = village
    at = run_app(seeded, "alarms", who="farmer-p01")
    assert any("大湾霜冻巡查" in m.value for m in at.markdown)
    assert at.button(key=f"ack_{ids['my_alarm']}")  # they may acknowledge their own alarm
    at = run_app(seeded, "lot_report", who="farmer-p01", lot=str(ids["my_lot"]))
    assert at.title[0].value.endswith(f"#{ids['my_lot']}") and len(at.get("download_button")) == 2
    at = run_app(seeded, "lot_report", who="farmer-p01", lot=str(ids["their_lot"]))
    assert at.error and "没有这个批次" in at.error[0].value  # the same answer as for a lot that does not exist
    at = run_app(seeded, "grading", who="farmer-p01")
    assert not at.main.button  # no lot controls for a farmer
    at = run_app(seeded, "cameras", who="farmer-p01", camera="cam-p02")
    assert not at.get("slider")  # another's camera is not opened from the URL


def page_alone(seeded: Seeded, page: str, monkeypatch: pytest.MonkeyPatch, who: str | None = None,
               **query: str) -> AppTest:
    """A page script run by itself, as if the navigation had let its URL through: its own check must hold."""
    from tests.conftest import sign_in

    monkeypatch.setenv("ORCHARD_STORE_URL", seeded.store_url)
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(seeded.data_dir))
    monkeypatch.setenv("ORCHARD_DASHBOARD__KIOSK_SECRET", KIOSK_SECRET)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(__file__).parents[2] / "dashboard" / "views" / f"{page}.py"), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    if who:
        at.session_state["auth_token"] = sign_in(seeded.data_dir, who)
    return at.run()


# The page lists below come from the pages themselves (dashboard/views/__init__.py): a new page is in them at once.
SIGNED_IN_PAGES = [p.file for p in discover() if not p.public]
WALL_PAGES = [p.file for p in discover() if "kiosk" in p.roles]
PERSONAL_PAGES = [p.file for p in discover() if not p.public and "kiosk" not in p.roles]


def test_every_page_is_in_the_access_tests() -> None:
    """A page a farmer may open has its row in PAGES (with the URL parameters it reads); every page is checked
    alone, and from the wall screen."""
    pages = discover()
    assert {p.file for p in pages if "farmer" in p.roles} == {page for page, _, _ in PAGES}
    assert {p.file for p in pages} == set(SIGNED_IN_PAGES) | {p.file for p in pages if p.public}
    assert set(WALL_PAGES) | set(PERSONAL_PAGES) == set(SIGNED_IN_PAGES)
    assert [p.file for p in pages if p.public] == ["receipt"]  # the one page without a sign-in: its own tests


@pytest.mark.parametrize("page", SIGNED_IN_PAGES)
def test_every_page_alone_refuses_nobody(village: tuple[Seeded, dict[str, int]], monkeypatch: pytest.MonkeyPatch,
                                         page: str) -> None:
    seeded, ids = village
    at = page_alone(seeded, page, monkeypatch, lot=str(ids["my_lot"]))
    assert at.text_input(key="signin_password") and not at.metric and not at.dataframe
    assert not at.get("plotly_chart") and not leaks(rendered(at))


def test_pages_not_for_farmers_refuse(run_app: RunApp, village: tuple[Seeded, dict[str, int]],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    seeded, _ = village
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        run_app(seeded, "devices", who="farmer-p01")  # not in a farmer's navigation at all
    at = page_alone(seeded, "devices", monkeypatch, who="farmer-p01")
    assert at.error and "没有查看这一页的权限" in at.error[0].value
    assert not leaks(rendered(at)) and not at.dataframe


def test_adviser_sees_covered_plots_not_the_dead_letters(run_app: RunApp,
                                                         village: tuple[Seeded, dict[str, int]]) -> None:
    seeded, _ = village
    at = run_app(seeded, "devices", who="adviser")
    devices = set(at.dataframe[0].value.iloc[:, 0])
    assert devices and all(d.endswith(("p01", "p02")) for d in devices)
    assert len(at.tabs) == 1  # the registry only: no approvals, no raw payloads


# -- every data function, as farmer-p01 --------------------------------------------------------------------------
@pytest.fixture
def as_dashboard(village: tuple[Seeded, dict[str, int]], monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    seeded, ids = village
    monkeypatch.setenv("ORCHARD_STORE_URL", seeded.store_url)
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(seeded.data_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    return ids


def _plots(x: object) -> set[str]:
    """The plots an answer is about; an answer that does not say (a frame without a plot column) is an error here,
    never an empty set that would pass for "nothing of p02"."""
    if isinstance(x, pd.DataFrame):
        assert "plot" in x, f"no plot column in {list(x.columns)}: check this answer another way"
        return set(x["plot"])
    if isinstance(x, dict):
        return {getattr(v, "plot", k) for k, v in x.items()}
    if isinstance(x, list):
        return {getattr(v, "plot", None) or "" for v in x}
    return {getattr(x, "plot", "")} if x is not None else set()


P01, NOTHING = frozenset({"p01"}), frozenset()
Expected = type[Forbidden] | frozenset[str] | Callable[[object, dict[str, int]], None]


def only_my_lot(got: object, ids: dict[str, int]) -> None:
    assert isinstance(got, pd.DataFrame) and len(got) > 0
    assert set(got["lot"]) == {str(ids["my_lot"])}  # minutes of the farmer's own lot, none of p02's


def no_open_lot_of_theirs(got: object, ids: dict[str, int]) -> None:
    assert got is None  # the line's open lot is p02's: the farmer is told nothing of it


def data_calls(ids: dict[str, int]) -> list[tuple[str, Callable[[Principal], object], Expected]]:
    """Every data function a page uses, called as the farmer of p01, with what the farmer must get: Forbidden,
    exactly these plots' rows, or a check of its own."""
    from dashboard import data

    now = time.time_ns()
    day = now - 86400 * NS
    return [
        ("latest", lambda w: data.latest(w), P01),
        ("last_24h", lambda w: {p: v for p, v in data.last_24h(w).min_temp.items()}, P01),
        ("series all", lambda w: data.series(w, ("air_temp_c",), day, now), P01),
        ("series p02", lambda w: data.series(w, ("air_temp_c",), day, now, plots=("p02",)), NOTHING),
        ("series device of p02", lambda w: data.series(w, ("air_temp_c",), day, now, devices=("ws-p02",)), NOTHING),
        ("series hourly", lambda w: data.series(w, ("air_temp_c",), day, now, by="plot", every_s=3600), P01),
        ("hourly_by_plot", lambda w: data.hourly_by_plot(w, ("air_temp_c",)), P01),
        ("devices", lambda w: data.devices(w), P01),
        ("active_alarms", lambda w: data.active_alarms(w), P01),
        ("camera_statuses", lambda w: data.camera_statuses(w), P01),
        ("camera_history p02", lambda w: data.camera_history(w, "cam-p02", day, now), Forbidden),
        ("camera_history unknown", lambda w: data.camera_history(w, "cam-x' OR '1'='1", day, now), Forbidden),
        ("open_lot", lambda w: data.open_lot(w, "line-1"), no_open_lot_of_theirs),
        ("lot theirs", lambda w: data.lot(w, ids["their_lot"]), Forbidden),
        ("lot_history", lambda w: data.lot_history(w), P01),
        ("lot_history p02", lambda w: data.lot_history(w, ("p02",)), NOTHING),
        ("season_quality", lambda w: data.season_quality(w), P01),
        ("season_quality p02", lambda w: data.season_quality(w, ("p02",)), NOTHING),
        ("line_minutes", lambda w: data.line_minutes(w, "line-1", day, now + 60 * NS), only_my_lot),
        ("lot_fruit theirs", lambda w: data.lot_fruit(w, ids["their_lot"], day, now + 60 * NS), Forbidden),
        ("last_payload", lambda w: data.last_payload(w, "ws-p01"), Forbidden),
        ("dead_letters", lambda w: data.dead_letters(w, day, now), Forbidden),
        ("dead_letter_counts", lambda w: data.dead_letter_counts(w), Forbidden),
    ]


CALLS = [name for name, _, _ in data_calls({"their_lot": 0})]


@pytest.mark.parametrize("call", CALLS)
def test_data_functions_give_a_farmer_only_their_plots(as_dashboard: dict[str, int], call: str) -> None:
    fn, expected = {name: (f, e) for name, f, e in data_calls(as_dashboard)}[call]
    if expected is Forbidden:
        with pytest.raises(Forbidden):
            fn(FARMER)
    elif isinstance(expected, frozenset):
        assert _plots(fn(FARMER)) == expected, call
    else:
        expected(fn(FARMER), as_dashboard)  # type: ignore[operator]


def test_the_command_center_sees_both(as_dashboard: dict[str, int]) -> None:
    """The same calls for the center do reach p02: the farmer's empty answers above are the scope, not an empty
    village."""
    center = Principal("center", "center", "", None)
    calls = {name: f for name, f, _ in data_calls(as_dashboard)}
    for name in ("latest", "devices", "active_alarms", "camera_statuses", "lot_history"):
        assert {"p01", "p02"} <= _plots(calls[name](center)), name
    assert _plots(calls["open_lot"](center)) == {"p02"}
    assert not calls["camera_history p02"](center).empty  # type: ignore[attr-defined]


# -- the wall screen ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", WALL_PAGES)
def test_kiosk_link_shows_no_personal_data(run_app: RunApp, village: tuple[Seeded, dict[str, int]],
                                           page: str) -> None:
    seeded, _ = village
    at = run_app(seeded, page, who=None, kiosk=kiosk_link())
    text = rendered(at)
    for personal in ("王建国", "李秀英", "李明", "farmer-p02", "138000000", "tester"):
        assert personal not in text, f"{page} shows {personal} on the wall screen"
    # read-only: nothing to type into, and no button but the camera wall's "look closer"
    assert not at.text_input and all(b.key.startswith("cam_open_") for b in at.button)
    if page == "command_center":
        assert "石板坡红阳园" in text  # every plot is on the wall


@pytest.mark.parametrize("page", PERSONAL_PAGES)
def test_kiosk_cannot_open_personal_pages(village: tuple[Seeded, dict[str, int]], monkeypatch: pytest.MonkeyPatch,
                                          page: str) -> None:
    seeded, ids = village
    at = page_alone(seeded, page, monkeypatch, kiosk=kiosk_link(), lot=str(ids["my_lot"]))
    assert at.error and "权限" in at.error[0].value
    assert not at.dataframe and not leaks(rendered(at))


@pytest.mark.parametrize(("token", "message"), [
    (lambda: kiosk_link(expires_in_s=-60), "已过期"),
    (lambda: kiosk_link(secret="guessed-secret"), "无效"),
    (lambda: kiosk_link()[:-3] + "AAA", "无效"),
    (lambda: kiosk_link().replace(".", "x", 1), "无效"),
    (lambda: "Li4u.Li4u", "无效"),
    (lambda: sign_screen(int(time.time()) + 3600, KIOSK_SECRET).split(".")[0], "无效"),
])
def test_expired_or_altered_kiosk_links_are_refused(run_app: RunApp, village: tuple[Seeded, dict[str, int]],
                                                    token: Callable[[], str], message: str) -> None:
    seeded, _ = village
    at = run_app(seeded, who=None, kiosk=token())
    assert at.error and message in at.error[0].value
    assert not at.metric and not at.get("plotly_chart")


def test_receipt_links_still_work_without_signing_in(run_app: RunApp, village: tuple[Seeded, dict[str, int]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from orchard.links import sign
    from orchard.records.outbox import Outbox

    seeded, ids = village
    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", "s3cret")
    records = Records.in_data_dir(seeded.data_dir)
    (nid,) = Outbox(records).queue(ids["my_alarm"], [("farmer-p01", "dingtalk")], 0, "alarm", time.time_ns())
    at = run_app(seeded, "receipt", who=None, t=sign(nid, int(time.time()) + 600, "s3cret"))
    assert "春季晚霜冻" in at.title[0].value and not at.error
    records.close()


# -- signing in ---------------------------------------------------------------------------------------------------
@pytest.fixture
def with_password(village: tuple[Seeded, dict[str, int]]) -> Iterator[Seeded]:
    from orchard.records.accounts import Accounts
    from orchard.settings import DashboardSettings

    seeded, _ = village
    records = Records.in_data_dir(seeded.data_dir)
    People(records).upsert(User("signer", "签到员", "farmer"))
    People(records).set_plots("signer", ["p01"], "owns")
    Accounts(records, DashboardSettings()).set_password("signer", "correct-horse-battery", time.time_ns())
    yield seeded
    from sqlalchemy import delete

    from orchard.records.schema import login_attempts

    with records.engine.begin() as conn:
        conn.execute(delete(login_attempts))
    records.close()


def sign_in_form(at: AppTest, user: str, password: str) -> AppTest:
    at.text_input(key="signin_user").input(user)
    at.text_input(key="signin_password").input(password)
    return at.button[0].click().run()


def test_nobody_signed_in_gets_only_the_form(run_app: RunApp, with_password: Seeded) -> None:
    at = run_app(with_password, who=None)
    assert at.title[0].value.startswith("🥝") and at.text_input(key="signin_password")
    assert not at.metric and not at.get("plotly_chart") and not leaks(rendered(at))
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        run_app(with_password, "environment", who=None)  # signed out, no page but the form exists


def test_sign_in_then_out(run_app: RunApp, with_password: Seeded) -> None:
    at = run_app(with_password, who=None)
    at = sign_in_form(at, "signer", "correct-horse-battery")
    assert not at.exception and at.title[0].value == "我的果园"  # a farmer signed in at the site: their home
    assert any("签到员" in c.value for c in at.sidebar.caption)
    at.sidebar.button(key="sign_out").click().run()
    assert at.text_input(key="signin_password") and not at.metric


def test_sign_in_rate_limit_holds_through_the_form(run_app: RunApp, with_password: Seeded) -> None:
    at = run_app(with_password, who=None)
    for i in range(5):
        at = sign_in_form(at, "signer", f"wrong-guess-{i}")
        assert at.error and "用户名或密码不对" in at.error[0].value
    at = sign_in_form(at, "signer", "correct-horse-battery")
    assert at.error and "暂停登录" in at.error[0].value and not at.metric


INJECTIONS = ["' OR '1'='1", "\" OR \"\"=\"", "p01' OR plot='p02", "p01\" OR \"plot\"='p02",
              "x'; DROP TABLE users; --", "1; SELECT * FROM passwords", "p01/**/OR/**/1=1", "\\' OR 1=1 --",
              "' UNION SELECT hash FROM passwords --", "p01\n; DROP MEASUREMENT telemetry"]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_through_the_sign_in_form_fails(run_app: RunApp, with_password: Seeded, attack: str) -> None:
    at = run_app(with_password, who=None)
    at = sign_in_form(at, attack, attack)
    assert at.error and "用户名或密码不对" in at.error[0].value and not at.metric
    records = Records.in_data_dir(with_password.data_dir)
    assert People(records).get("signer") is not None  # nothing dropped
    records.close()


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_through_url_parameters_and_data_functions_fails(
        run_app: RunApp, village: tuple[Seeded, dict[str, int]], as_dashboard: dict[str, int], attack: str) -> None:
    from dashboard import data

    seeded, _ = village
    for page, param in (("lot_report", "lot"), ("cameras", "camera"), ("environment", "range")):
        at = run_app(seeded, page, who="farmer-p01", **{param: attack})
        assert not leaks(rendered(at))
    now = time.time_ns()
    # injection through plot, device and line names, as a page would pass what a person chose
    assert data.series(FARMER, ("air_temp_c",), now - 86400 * NS, now, plots=(attack,)).empty
    assert _plots(data.series(FARMER, ("air_temp_c",), now - 86400 * NS, now, devices=(attack,))) <= {"p01"}
    assert data.line_minutes(FARMER, attack, now - 86400 * NS, now).empty
    assert data.lot_history(FARMER, (attack,)) == []
    records = Records.in_data_dir(Path(seeded.data_dir))
    assert People(records).get("farmer-p02") is not None
    records.close()
    store = open_store(seeded.store_url)
    assert store.latest("telemetry", ["air_temp_c"], since_ns=now - 86400 * NS)  # the table is still there
    store.close()


@pytest.mark.parametrize(("email", "signed_in"), [("wang@example.cn", True), ("WANG@example.cn", True),
                                                  ("stranger@example.cn", False), ("", False)])
def test_single_sign_on_maps_the_identity_to_a_user_by_e_mail(
        village: tuple[Seeded, dict[str, int]], monkeypatch: pytest.MonkeyPatch, email: str, signed_in: bool) -> None:
    """After st.login (the identity provider itself is not reachable here), the identity's e-mail must belong to
    an active user here, who then gets that user's role and plots."""
    seeded, _ = village
    records = Records.in_data_dir(seeded.data_dir)
    People(records).upsert(User("farmer-p01", "王建国", "farmer", phone="13800000001", email="wang@example.cn"))
    records.close()
    for key, value in (("METADATA_URL", "https://sso.example.cn/.well-known/openid-configuration"),
                       ("CLIENT_ID", "orchard"), ("CLIENT_SECRET", "x" * 24), ("COOKIE_SECRET", "y" * 32)):
        monkeypatch.setenv(f"ORCHARD_DASHBOARD__OIDC_{key}", value)
    monkeypatch.setenv("ORCHARD_STORE_URL", seeded.store_url)
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(seeded.data_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(__file__).parents[2] / "dashboard" / "app.py"), default_timeout=60)
    at.user = {"is_logged_in": True, "email": email}
    at.run()
    assert not at.exception
    if signed_in:
        home = rendered(at)
        assert at.title[0].value == "我的果园" and OWN in home and not leaks(home)  # their home: p01 only
        assert any("王建国" in c.value for c in at.sidebar.caption)
    else:
        assert at.error and "没有对应的账号" in at.error[0].value and not at.metric


@pytest.mark.parametrize("attack", INJECTIONS[:5])
def test_injection_through_free_text_is_stored_as_text(run_app: RunApp, village: tuple[Seeded, dict[str, int]],
                                                      attack: str) -> None:
    """What a farmer types (a 随手拍 report, an alarm comment) is kept verbatim and changes nothing else."""
    seeded, ids = village
    at = run_app(seeded, "report", who="farmer-p01")
    at.text_input(key="report_text").input(attack).run()
    at.button(key="report_send").click().run()
    assert not at.exception and at.success
    at = run_app(seeded, "alarms", who="farmer-p01")
    at.text_input(key=f"comment_{ids['my_alarm']}").input(attack).run()
    at.button(key=f"comment_go_{ids['my_alarm']}").click().run()
    records = Records.in_data_dir(seeded.data_dir)
    orders = WorkOrders(records, seeded.data_dir / "photos").find(plots=["p01"])
    assert attack[:200].strip() in [w.title for w in orders]
    events = AlarmBook(records).events(ids["my_alarm"])
    assert any(e.detail.get("text") == attack for e in events if e.action == "commented")
    assert People(records).get("farmer-p02") is not None and len(People(records).all()) >= 3
    records.close()

