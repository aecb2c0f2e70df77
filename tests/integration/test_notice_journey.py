"""A notice's journey in a real browser (`streamlit run` of the dashboard, Debian's headless Chromium): the village's
staff write a notice on the 1920x1080 screen; a farmer opens his personal link on the phone in DingTalk's browser
and answers 收到; the staff see who has not read it and remind only them. What the records DB then holds is
asserted; screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.servers import free_port
from dashboard.server import DashboardServer
from orchard.county import one_village
from orchard.links import sign_notice
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.notices import NoticeBook
from orchard.records.people import People, Role, User
from orchard.settings import DashboardSettings
from orchard.site import SHIPPED, load_site
from tests.conftest import KIOSK_SECRET
from tests.dashboard.conftest import seed
from tests.integration.browser import (
    DINGTALK_UA,
    chrome,
    require_chromium,
    says,
    screenshot,
    settled,
    sign_in,
    tap,
    until,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]
PASSWORD = "orchard-notices-2026"
LINK_SECRET = "notice-journey-secret"


@dataclass
class Village:
    url: str
    data_dir: Path

    def book(self) -> tuple[Records, NoticeBook]:
        records = Records.in_data_dir(self.data_dir)
        return records, NoticeBook(records, one_village(load_site(SHIPPED / "sunzigou" / "site.toml")))


def open_tab(driver: Any, label: str) -> None:
    """Streamlit's tabs are not buttons: the element with role tab that says `label`."""
    from selenium.webdriver.common.by import By

    tab = until(driver, lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, '[role="tab"]')
                                        if t.is_displayed() and label in t.text), None), 60, f"the tab {label!r}")
    tab.click()
    settled(driver)


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    require_chromium()
    d = tmp_path_factory.mktemp("notice-journey")
    url = f"sqlite:///{d}/ts.sqlite"
    seed(d, url, 0, time.time())
    records = Records.in_data_dir(d)
    people = People(records)
    people.upsert(User("zhang", "张站长", Role.CENTER))
    people.upsert(User("wang", "王建国", Role.FARMER, channels=("dingtalk",)))
    people.upsert(User("liu", "刘桂兰", Role.FARMER))
    Accounts(records, DashboardSettings()).set_password("zhang", PASSWORD, time.time_ns())
    records.close()
    env = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(d), "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET,
           "ORCHARD_NOTIFY__LINK_SECRET": LINK_SECRET}
    with DashboardServer(env, d / "dashboard.log", free_port()) as server:
        yield Village(server.url, d)


def test_a_notice_is_written_read_on_the_phone_confirmed_and_the_unread_reminded(village: Village) -> None:
    from selenium.webdriver.common.by import By

    with chrome("wall") as d:
        d.get(f"{village.url}/notices")
        sign_in(d, "zhang", PASSWORD)
        says(d, "通知", "写通知")
        open_tab(d, "写通知")
        title = next(e for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stTextInput"] input')
                     if e.is_displayed())
        title.send_keys("今晚有霜冻，请开启防霜设备\n")
        settled(d)
        body = next(e for e in d.find_elements(By.CSS_SELECTOR, 'textarea')
                    if e.is_displayed())
        body.send_keys("最低气温 -3°C，凌晨 4 点前后最冷。")
        body.send_keys("\t")
        settled(d)
        confirm = next(e for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stCheckbox"] label')
                       if e.is_displayed())
        confirm.click()
        settled(d)
        says(d, "将发给 2 人")
        tap(d, "发送通知")
        says(d, "已发出，共 2 人")
        screenshot(d, "center-notice-written")

    records, book = village.book()
    try:
        (notice,) = book.for_user("wang")
        assert notice[0].title == "今晚有霜冻，请开启防霜设备" and notice[0].confirm
        assert sorted(r.user for r in book.recipients(notice[0].id)) == ["liu", "wang"]
    finally:
        records.close()
    nid = notice[0].id

    with chrome("phone", DINGTALK_UA) as d:
        token = sign_notice(nid, "wang", int(time.time()) + 3 * 86400, LINK_SECRET)
        d.get(f"{village.url}/receipt?n={token}")
        says(d, "今晚有霜冻，请开启防霜设备", "最低气温 -3°C", "张站长")
        screenshot(d, "farmer-notice-link-phone")
        tap(d, "收到")
        says(d, "已回复收到，谢谢")

    records, book = village.book()
    try:
        wang = book.recipient(nid, "wang")
        assert wang is not None and wang.read_ns is not None and wang.confirmed_ns is not None
        assert book.recipient(nid, "liu").read_ns is None  # type: ignore[union-attr]
    finally:
        records.close()

    with chrome("wall") as d:
        d.get(f"{village.url}/notices")
        sign_in(d, "zhang", PASSWORD)
        says(d, "已发出")
        open_tab(d, "已发出")
        says(d, "阅读情况（按村）", "提醒未读的 1 人")  # the tables are drawn on a canvas: their names are not text
        screenshot(d, "center-notice-read-matrix")
        tap(d, "提醒未读的 1 人")
        settled(d)  # what counts is what the records DB holds (below); the page may redraw its tabs meanwhile

    deadline = time.monotonic() + 30
    while True:
        records, book = village.book()
        try:
            reminded = {r.user: (r.reminders, r.wanted) for r in book.recipients(nid)}
        finally:
            records.close()
        if reminded["liu"][0] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # only the one who has not read it; no analytics service runs here, so wang's message itself is still wanted
    assert reminded == {"liu": (1, "reminder"), "wang": (0, "notice")}
