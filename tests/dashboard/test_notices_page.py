"""The 通知 page and a notice's link, in Streamlit's app test: the village's staff write a notice for the farmers,
see who has read it and remind only the unread; the link records the reader's read and 收到 and refuses an
altered or expired token; town and county staff write notices too, and no village page opens for them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.views import discover
from orchard.county import one_village
from orchard.links import sign_notice
from orchard.records import Records
from orchard.records.notices import Audience, Draft, NoticeBook
from orchard.records.people import People, Role, User
from orchard.settings import Settings
from orchard.site import site_for
from tests.conftest import Seeded
from tests.dashboard.conftest import seed
from tests.dashboard.test_access import page_alone

pytestmark = pytest.mark.integration
RunApp = Callable[..., AppTest]
SECRET = "notice-link-secret"


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    d = tmp_path_factory.mktemp("notices")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records = Records.open(Settings(store_url=seeded.store_url, data_dir=d))
    people = People(records)
    people.upsert(User("zhao", "赵主任", Role.CENTER))
    people.upsert(User("wang", "王建国", Role.FARMER))
    people.upsert(User("liu", "刘桂兰", Role.FARMER))
    people.upsert(User("li", "李农技", Role.ADVISER))
    people.upsert(User("town-1", "永宁镇农业站", Role.TOWN, town="sunzigou-town"))
    people.upsert(User("county-1", "县农业农村局", Role.COUNTY))
    records.close()
    yield seeded


def book_of(seeded: Seeded) -> tuple[Records, NoticeBook]:
    s = Settings(store_url=seeded.store_url, data_dir=seeded.data_dir)
    records = Records.open(s)
    return records, NoticeBook(records, one_village(site_for(s)))


def test_village_staff_write_a_notice_for_the_farmers(run_app: RunApp, village: Seeded) -> None:
    at = run_app(village, "notices", who="zhao")
    at.text_input(key="nw_title").input("冬剪后请喷铜")
    at.text_area(key="nw_body").input("剪口干后 24 小时内喷 1 次铜制剂。")
    at.multiselect(key="nw_roles").select(Role.FARMER)
    at.checkbox(key="nw_confirm").check()
    at.run()
    assert any("将发给 2 人" in i.value for i in at.info)
    at.button(key="nw_send").click().run()
    assert not at.exception and any("共 2 人" in s.value for s in at.success)
    records, book = book_of(village)
    (notice,) = [n for n in book.sent_in(["sunzigou"]) if n.title == "冬剪后请喷铜"]
    assert notice.confirm and notice.author == "zhao"
    assert sorted(r.user for r in book.recipients(notice.id)) == ["liu", "wang"]
    records.close()


def test_the_sender_sees_who_has_not_read_and_reminds_only_them(run_app: RunApp, village: Seeded) -> None:
    records, book = book_of(village)
    zhao = book.people.get("zhao")
    assert zhao is not None
    n = book.send(zhao, Draft("明早 8 点村委会开会", audience=Audience(roles=(Role.FARMER, Role.ADVISER))),
                  time.time_ns() + 10**9)  # the newest: the page shows it first
    book.read(n.id, "wang", time.time_ns())
    at = run_app(village, "notices", who="zhao")
    matrix = next(d.value for d in at.dataframe if "未读的人" in d.value.columns)
    (row,) = matrix.to_dict("records")
    assert (row["人数"], row["已读"]) == (3, 1) and set(row["未读的人"].split("、")) == {"刘桂兰", "李农技"}
    at.button(key=f"remind_{n.id}").click().run()
    assert any("已提醒 2 人" in s.value for s in at.success)
    assert sorted(r.user for _, r in book.wanted() if r.notice_id == n.id and r.wanted == "reminder") == [
        "li", "liu"]
    records.close()


def test_the_link_records_the_read_and_the_confirmation(run_app: RunApp, village: Seeded,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", SECRET)
    records, book = book_of(village)
    zhao = book.people.get("zhao")
    assert zhao is not None
    n = book.send(zhao, Draft("黄色霜冻预警", "今晚最低 -2°C", confirm=True, audience=Audience(people=("liu",))),
                  time.time_ns())
    token = sign_notice(n.id, "liu", int(time.time()) + 600, SECRET)
    at = run_app(village, "receipt", who=None, n=token)
    assert "黄色霜冻预警" in at.subheader[0].value and not at.error
    assert book.recipient(n.id, "liu").read_ns is not None  # type: ignore[union-attr]
    assert book.recipient(n.id, "liu").confirmed_ns is None  # type: ignore[union-attr]
    at.button(key="receipt_notice_confirm").click().run()
    assert book.recipient(n.id, "liu").confirmed_ns is not None  # type: ignore[union-attr]
    records.close()


@pytest.mark.parametrize(("token", "message"), [
    (lambda nid: sign_notice(nid, "wang", int(time.time()) - 60, SECRET), "已过期"),
    (lambda nid: sign_notice(nid, "wang", int(time.time()) + 600, "guessed"), "无效"),
    (lambda nid: sign_notice(nid, "liu", int(time.time()) + 600, SECRET)[:-2] + "AA", "无效"),
    (lambda nid: sign_notice(nid + 1000, "wang", int(time.time()) + 600, SECRET), "无效"),
])
def test_an_altered_or_expired_link_records_nothing(run_app: RunApp, village: Seeded,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    token: Callable[[int], str], message: str) -> None:
    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", SECRET)
    records, book = book_of(village)
    zhao = book.people.get("zhao")
    assert zhao is not None
    n = book.send(zhao, Draft("不该被读到", audience=Audience(people=("wang",))), time.time_ns())
    at = run_app(village, "receipt", who=None, n=token(n.id))
    assert at.error and message in at.error[0].value
    assert book.recipient(n.id, "wang").read_ns is None  # type: ignore[union-attr]
    records.close()


@pytest.mark.parametrize("who", ["town-1", "county-1"])
def test_town_and_county_staff_land_on_their_overview_and_write_notices(run_app: RunApp, village: Seeded,
                                                                         who: str) -> None:
    at = run_app(village, who=who)
    assert at.title[0].value == "县域总览"  # a deployment of one village: a county of one
    assert at.dataframe[0].value["村/乡镇"].tolist() == ["🟢 笋子沟村"]
    at = run_app(village, "notices", who=who)
    assert [t.label for t in at.tabs] == ["发给我的", "写通知", "已发出"]


VILLAGE_PAGES = [(p.file, who) for p in discover() if not p.public for who in ("town-1", "county-1")
                 if who.split("-")[0] not in p.roles]


@pytest.mark.parametrize(("page", "who"), VILLAGE_PAGES)
def test_no_village_page_opens_for_town_or_county_staff(village: Seeded, monkeypatch: pytest.MonkeyPatch,
                                                        page: str, who: str) -> None:
    """Until the county's own view: a page not meant for their tier refuses them when reached by its address."""
    at = page_alone(village, page, monkeypatch, who=who)
    assert at.error and "权限" in at.error[0].value
    assert not at.dataframe and not at.metric and not at.get("plotly_chart")


def test_a_link_of_a_disabled_account_opens_nothing(run_app: RunApp, village: Seeded,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", SECRET)
    records, book = book_of(village)
    zhao = book.people.get("zhao")
    assert zhao is not None
    book.people.upsert(User("gone", "已离村", Role.FARMER))
    n = book.send(zhao, Draft("停用后的链接", audience=Audience(people=("gone",))), time.time_ns())
    book.people.upsert(User("gone", "已离村", Role.FARMER, active=False))
    at = run_app(village, "receipt", who=None, n=sign_notice(n.id, "gone", int(time.time()) + 600, SECRET))
    assert at.error and "停用" in at.error[0].value and not at.subheader
    assert book.recipient(n.id, "gone").read_ns is None  # type: ignore[union-attr]
    records.close()


def test_the_farmers_home_says_when_a_notice_waits(run_app: RunApp, village: Seeded) -> None:
    records, book = book_of(village)
    zhao = book.people.get("zhao")
    assert zhao is not None
    book.people.upsert(User("qian", "钱大伯", Role.FARMER))
    n = book.send(zhao, Draft("明天统一打药", audience=Audience(people=("qian",))), time.time_ns())
    at = run_app(village, "my_orchard", who="qian")
    assert any("有 1 条通知" in w.value for w in at.warning)
    book.read(n.id, "qian", time.time_ns())
    at = run_app(village, "my_orchard", who="qian")
    assert not any("通知" in w.value for w in at.warning)
    records.close()
