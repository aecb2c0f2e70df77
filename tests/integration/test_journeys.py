"""The people's journeys in a real browser: `streamlit run` of the dashboard (with its sign-in cookie routes) on
loopback, Debian's headless Chromium as the farmer's phone (390x844, also as DingTalk's and WeChat's in-app
browsers), the adviser's phone and the command center's 1920x1080 screen, in Chinese and English. Each journey
asserts what the person sees and what the records DB then holds, and saves screenshots to
test-artifacts/screenshots/ (or $ORCHARD_TEST_ARTIFACTS)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bench.servers import free_port
from dashboard.cookie import COOKIE
from dashboard.server import DashboardServer
from orchard.links import sign
from orchard.models import Signal
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, User
from orchard.records.snapshots import SnapshotFiles
from orchard.records.workorders import WorkOrders
from orchard.settings import DashboardSettings
from tests.conftest import KIOSK_SECRET, kiosk_link
from tests.dashboard.conftest import seed
from tests.integration.browser import (
    DINGTALK_UA,
    WECHAT_UA,
    button,
    chrome,
    require_chromium,
    says,
    screenshot,
    settled,
    sign_in,
    signed_out,
    tap,
    text,
    until,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]
PASSWORD = "orchard-journeys-2026"
LINK_SECRET = "journeys-link-secret"
NS = 1_000_000_000
WALL_REFRESH_S = 2


def jpeg(level: int, w: int = 640, h: int = 360) -> bytes:
    img = np.full((h, w, 3), level, np.uint8)
    cv2.putText(img, "p01", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return cv2.imencode(".jpg", img)[1].tobytes()


def frost(plot: str) -> Signal:
    return Signal("sunzigou", f"plot:{plot}", "spring_frost", "critical", "alarm.spring_frost_text",
                  {"plot": plot, "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, plot)


@dataclass
class Village:
    url: str
    data_dir: Path
    link: str  # the personal link of 王建国's DingTalk message about p01's frost
    receipt_alarm: int
    center_alarm: int  # p02's frost, for the command center's journey

    def records(self) -> Records:
        return Records.in_data_dir(self.data_dir)


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    require_chromium()
    d = tmp_path_factory.mktemp("journeys")
    url = f"sqlite:///{d}/ts.sqlite"
    seed(d, url, 0.1, time.time())
    records = Records.in_data_dir(d)
    people, accounts = People(records), Accounts(records, DashboardSettings())
    people.upsert(User("wang", "王建国", "farmer", channels=("dingtalk",)))
    people.set_plots("wang", ["p01"], "owns")
    people.upsert(User("li", "李明", "adviser"))
    people.set_plots("li", ["p01", "p02"], "covers")
    people.upsert(User("zhang", "张站长", "center"))
    for name in ("wang", "li", "zhang"):
        accounts.set_password(name, PASSWORD, time.time_ns())
    now = time.time_ns()
    book, outbox = AlarmBook(records), Outbox(records)
    p01, _ = book.fire(frost("p01"), now)
    ref = SnapshotFiles(d / "snapshots").write("cam-p01", now - 60 * NS, jpeg(90, 1280, 720), jpeg(90))
    book.attach(p01.id, ref, now)
    (nid,) = outbox.queue(p01.id, [("wang", "dingtalk")], 0, "alarm", now)
    outbox.sent(nid, now)
    p02, _ = book.fire(frost("p02"), now)
    records.close()
    env = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(d), "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET,
           "ORCHARD_NOTIFY__LINK_SECRET": LINK_SECRET, "ORCHARD_DASHBOARD__REFRESH_S": str(WALL_REFRESH_S)}
    with DashboardServer(env, d / "dashboard.log", free_port()) as server:
        token = sign(nid, int(time.time()) + 3 * 86400, LINK_SECRET)
        yield Village(server.url, d, f"{server.url}/receipt?t={token}", p01.id, p02.id)


def session_cookie(driver: Any) -> dict[str, Any]:
    found = driver.get_cookie(COOKIE)
    assert found is not None, f"no {COOKIE} cookie: {driver.get_cookies()}"
    return dict(found)


def no_sideways_scroll(driver: Any) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= driver.get_window_size()["width"] + 1


# -- a farmer signs in once, and stays signed in -----------------------------------------------------------------
@pytest.mark.parametrize(("lang", "agent", "home", "plot", "words"), [
    ("zh", WECHAT_UA, "我的果园", "大湾红阳园", ["危险", "现在要做：", "随手拍"]),
    ("en", DINGTALK_UA, "My orchard", "Dawan", ["Danger", "What to do now:", "Snap a problem"]),
], ids=["zh-wechat", "en-dingtalk"])
def test_a_farmer_signs_in_once_and_stays_signed_in(village: Village, lang: str, agent: str, home: str, plot: str,
                                                    words: list[str]) -> None:
    with chrome("phone", agent) as d:
        d.get(f"{village.url}/?lang={lang}")
        sign_in(d, "wang", PASSWORD)
        page = says(d, home, plot, *words)
        assert "石板坡" not in page and "Shibanpo" not in page  # next door's plot is not theirs
        assert "kiosk-link" not in page and "Deploy" not in page  # no operator's hint, no Streamlit menu
        until(d, lambda drv: drv.get_cookie(COOKIE), 30, "the session cookie")
        cookie = session_cookie(d)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert d.execute_script("return document.cookie").find(COOKIE) == -1  # scripts cannot read it
        no_sideways_scroll(d)
        title_top, header_bottom = d.execute_script("""return [document.querySelector('h1').getBoundingClientRect().top,
            document.querySelector('[data-testid=stHeader]').getBoundingClientRect().bottom]""")
        assert title_top >= header_bottom, (title_top, header_bottom)  # the title is not under the header
        screenshot(d, f"farmer-home-{lang}-phone")

        d.refresh()  # a reload
        says(d, home, plot)
        assert not signed_out(d)
        d.get(f"{village.url}/report?lang={lang}")  # a page by its address
        says(d, "随手拍" if lang == "zh" else "Photo report")
        assert not signed_out(d)
        d.switch_to.new_window("tab")  # a new tab
        d.get(f"{village.url}/alarms?lang={lang}")
        says(d, "预警与工单" if lang == "zh" else "Alarms")
        assert not signed_out(d)


def test_signing_out_ends_the_session_in_every_tab(village: Village) -> None:
    with chrome("wall") as d:
        d.get(f"{village.url}/environment")
        sign_in(d, "zhang", PASSWORD)
        says(d, "环境监测")
        until(d, lambda drv: drv.get_cookie(COOKIE), 30, "the session cookie")
        first = d.current_window_handle
        d.switch_to.new_window("tab")
        d.get(f"{village.url}/devices")
        says(d, "设备")
        d.switch_to.window(first)
        tap(d, "退出登录")
        says(d, "您已退出登录")
        until(d, lambda drv: drv.get_cookie(COOKIE) is None, 30, "the cookie to be dropped")
        d.switch_to.window(d.window_handles[-1])
        d.refresh()
        until(d, signed_out, 60, "the sign-in form in the other tab")


# -- the DingTalk message's link, on the phone -------------------------------------------------------------------
def test_a_farmer_opens_the_dingtalk_link_reads_the_advice_and_acknowledges(village: Village) -> None:
    with chrome("phone", DINGTALK_UA) as d:
        d.get(village.link)
        page = says(d, "春季晚霜冻", "大湾红阳园", "我是王建国，确认收到")
        assert "喷" in page or "熏烟" in page or "防霜" in page, page  # the advice is on the page
        pictures = d.execute_script(
            "return [...document.images].filter(i => i.complete && i.naturalWidth > 0).map(i => i.naturalWidth)")
        assert 1280 in pictures  # the camera's photo of the plot, full size
        screenshot(d, "farmer-dingtalk-link-phone")
        tap(d, "我是王建国，确认收到")
        says(d, "已确认，谢谢")
    records = village.records()
    try:
        alarm = AlarmBook(records).get(village.receipt_alarm)
        (note,) = Outbox(records).for_alarm(village.receipt_alarm)
    finally:
        records.close()
    assert alarm.acked_by == "wang" and note.read_ns is not None


# -- a 随手拍 with a photo, to the adviser who resolves it from the phone --------------------------------------------
def test_a_snap_becomes_a_work_order_the_adviser_resolves_from_the_phone(village: Village, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    photo = tmp_path / "leaf.jpg"
    photo.write_bytes(jpeg(60))
    with chrome("phone", WECHAT_UA) as d:
        d.get(village.url)
        sign_in(d, "wang", PASSWORD)
        says(d, "我的果园")
        tap(d, "📷 随手拍")
        says(d, "发现了什么问题？")
        until(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, 'input[type="file"]'), 30, "the photo field")
        drawn = d.execute_script("""return [['[data-testid=stFileUploaderDropzone] button p', '::after'],
            ['[data-testid=stCameraInputButton]', '::after']].map(([css, part]) =>
            getComputedStyle(document.querySelector(css), part).content)""")
        assert drawn == ['"选择照片"', '"拍照"']  # Streamlit's own English words, drawn in Chinese
        d.find_elements(By.CSS_SELECTOR, 'input[type="file"]')[-1].send_keys(str(photo))
        says(d, "leaf.jpg")
        box = next(e for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stTextInput"] input') if e.is_displayed())
        box.send_keys("叶片背面有褐色斑点\n")
        settled(d)
        tap(d, "上报")
        sent = says(d, "已上报，工单 #")
        records = village.records()
        try:
            every = WorkOrders(records, village.data_dir / "photos").find()
            found = [w for w in every if w.title == "叶片背面有褐色斑点"]
            assert len(found) == 1, (sent, [(w.id, w.title, w.created_by) for w in every])
            (opened,) = found
        finally:
            records.close()
        wo_id = opened.id
        assert f"工单 #{wo_id} " in sent, sent  # the farmer is told its number
        screenshot(d, "farmer-snap-sent-phone")
        d.get(village.url)  # home: the work order it opened
        says(d, f"#{wo_id} 叶片背面有褐色斑点")

    with chrome("phone") as d:
        d.get(f"{village.url}/")
        sign_in(d, "li", PASSWORD)
        says(d, "我的工作", f"#{wo_id} 叶片背面有褐色斑点", "今天要去的地块")
        screenshot(d, "adviser-day-phone")
        for step in ("接单", "我已到场"):
            tap(d, step)
            settled(d)
        until(d, lambda drv: button(drv, "已解决"), 60, "the resolve step")
        note = next(e for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stTextInput"] input')
                    if e.is_displayed())
        note.send_keys("已喷铜制剂，剪除病叶\n")
        settled(d)
        tap(d, "已解决")
        settled(d)
    records = village.records()
    try:
        orders = WorkOrders(records, village.data_dir / "photos")
        wo = orders.get(wo_id)
        trail = orders.events(wo_id)
    finally:
        records.close()
    assert (wo.state, wo.assignee, wo.created_by) == ("resolved", "li", "wang")
    # assigned to the plot's adviser as it was sent; then one tap per step
    assert [e.to_state for e in trail] == ["assigned", "accepted", "on_site", "resolved"]
    assert trail[0].photo_kind == "report" and trail[-1].note == "已喷铜制剂，剪除病叶"


# -- the command center assigns, silences a plot for maintenance and closes an alarm --------------------------------
def test_the_center_assigns_silences_and_closes(village: Village) -> None:
    from selenium.webdriver.common.by import By

    def keyed(drv: Any, key: str, css: str = "input") -> Any:
        """The widget of that key once it can be used (a button is enabled only after the reason reached it)."""
        return until(drv, lambda x: next((e for e in x.find_elements(By.CSS_SELECTOR, f".st-key-{key} {css}")
                                          if e.is_enabled()), None), 30, f"the widget {key}")

    def in_alarm(drv: Any, label: str) -> None:
        """Tap the button `label` inside p02's alarm (p01's may be open above it with the same buttons)."""
        def find(x: Any) -> Any:
            box = next((e for e in x.find_elements(By.CSS_SELECTOR, "details")
                        if "Shibanpo" in e.find_element(By.CSS_SELECTOR, "summary").text), None)
            buttons = box.find_elements(By.CSS_SELECTOR, "button") if box is not None else []
            return next((b for b in buttons if b.text.strip().split("\n")[0] == label), None)

        from selenium.common.exceptions import StaleElementReferenceException

        for attempt in range(3):  # a rerun can redraw the alarm between finding its button and clicking it
            found = until(drv, find, 30, f"the button {label!r} in p02's alarm")
            try:
                drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", found)
                found.click()
                return
            except StaleElementReferenceException:
                if attempt == 2:
                    raise

    alarm = village.center_alarm
    with chrome("wall", lang="en-US") as d:
        d.get(f"{village.url}/alarms?lang=en")
        sign_in(d, "zhang", PASSWORD)
        says(d, "Shibanpo")
        box = until(d, lambda x: next((e for e in x.find_elements(By.CSS_SELECTOR, "details")
                                       if "Shibanpo" in e.find_element(By.CSS_SELECTOR, "summary").text), None),
                    30, "p02's alarm")
        if box.get_attribute("open") is None:
            box.find_element(By.CSS_SELECTOR, "summary").click()
        assign = keyed(d, f"assign_{alarm}")
        assign.click()
        until(d, lambda x: next((o for o in x.find_elements(By.CSS_SELECTOR, '[role="option"]')
                                 if o.text.strip() == "li"), None), 30, "the choice li").click()
        settled(d)
        in_alarm(d, "Silence")
        keyed(d, f"sil_r_{alarm}").send_keys("pump maintenance\n")
        settled(d)
        keyed(d, f"sil_{alarm}", "button").click()
        says(d, "Silenced until")
        screenshot(d, "center-alarms-wall-en")
        in_alarm(d, "Close")
        keyed(d, f"close_r_{alarm}").send_keys("frost protection done\n")
        settled(d)
        keyed(d, f"close_{alarm}", "button").click()
        settled(d)
    records = village.records()
    try:
        book = AlarmBook(records)
        alarm = book.get(village.center_alarm)
        trail = book.events(village.center_alarm)
        silences = book.silences(time.time_ns())
    finally:
        records.close()
    assert (alarm.assignee, alarm.cleared_ns is not None) == ("li", True), [(e.actor, e.action, dict(e.detail))
                                                                            for e in trail]
    assert [(s.plot, s.reason, s.created_by) for s in silences] == [("p02", "pump maintenance", "zhang")]


# -- the wall screen runs refresh after refresh without a reload ----------------------------------------------------
REFRESHES = 60  # 30 minutes of the default 30 s refresh, at the test server's WALL_REFRESH_S


def test_the_wall_screen_runs_half_an_hour_of_refreshes_without_a_reload(village: Village) -> None:
    with chrome("wall") as d:
        d.get(f"{village.url}/?kiosk={kiosk_link()}")
        says(d, "指挥中心", "在线设备")
        d.execute_script("window.__same_page = 'yes'")  # gone if the page ever reloads
        clock = re.compile(r"更新于 \S+ (\d\d:\d\d:\d\d)")

        def updated(drv: Any) -> str | None:
            m = clock.search(text(drv))
            return m.group(1) if m else None

        seen = [until(d, updated, 60, "the refresh clock")]
        nodes, heap = [], []
        deadline = time.monotonic() + REFRESHES * WALL_REFRESH_S * 4
        while len(seen) <= REFRESHES and time.monotonic() < deadline:
            until(d, lambda drv: (updated(drv) or seen[-1]) != seen[-1], 60, "the next refresh")
            seen.append(updated(d) or seen[-1])
            nodes.append(d.execute_script("return document.getElementsByTagName('*').length"))
            heap.append(d.execute_script("return performance.memory.usedJSHeapSize") / 2**20)
        assert len(seen) > REFRESHES, f"{len(seen) - 1} refreshes before the deadline"
        assert d.execute_script("return window.__same_page") == "yes"
        page = text(d)
        assert "在线设备" in page and not signed_out(d)
        assert max(nodes[-10:]) <= 1.2 * max(nodes[:10]), nodes  # nothing piles up on the page
        assert max(heap[-10:]) <= max(50.0, 2 * max(heap[:10])), heap
        screenshot(d, "wall-after-refreshes")
