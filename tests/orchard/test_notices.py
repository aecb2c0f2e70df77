"""Notices with read status (orchard/records/notices.py), on SQLite and PostgreSQL: who a notice reaches in a county
of four towns, what each tier may send, reads and 收到, the read matrix, reminders only to the unread, on a
schedule driven by an injected clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchard.county import County, CountyInfo, TownEntry, VillageEntry
from orchard.records import Records
from orchard.records.notices import Audience, Draft, NoticeBook, NoticeError, PlaceRow, tier_villages
from orchard.records.people import People, Role, User
from orchard.site import SHIPPED, load_site

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 10**9
MIN = 60 * NS
T0 = 1_780_000_000 * NS  # a fixed moment; nothing here reads today's date
TOWNS = {"yongning": ("永宁镇", ["sunzigou", "hexi"]), "wenchang": ("文昌镇", ["qiaoxi"]),
         "yuanba": ("元坝镇", ["shanglong"]), "ling": ("陵江镇", ["dongxi"])}
COUNTY = County(CountyInfo(id="cangxi", name="苍溪县"),
                tuple(TownEntry(id=t, name=name, villages=tuple(VillageEntry(id=v) for v in vs))
                      for t, (name, vs) in TOWNS.items()),
                {v: SITE for _, vs in TOWNS.values() for v in vs})
VILLAGES = [v for _, vs in TOWNS.values() for v in vs]


def village_people(v: str) -> list[str]:
    return [f"center-{v}", f"adviser-{v}", f"farmer-{v}-1", f"farmer-{v}-2"]


def people_of(*villages: str) -> set[str]:
    return {p for v in villages for p in village_people(v)}


@pytest.fixture
def book(records: Records) -> Iterator[NoticeBook]:
    people = People(records)
    people.upsert(User("county-1", "县农业局", Role.COUNTY))
    people.upsert(User("county-2", "县气象局", Role.COUNTY))
    for t in TOWNS:
        people.upsert(User(f"town-{t}", f"{TOWNS[t][0]}农业站", Role.TOWN, town=t))
    for v in VILLAGES:
        people.upsert(User(f"center-{v}", f"{v} 村委", Role.CENTER, village=v))
        people.upsert(User(f"adviser-{v}", f"{v} 农技员", Role.ADVISER, village=v))
        for n in (1, 2):
            people.upsert(User(f"farmer-{v}-{n}", f"{v} 果农{n}", Role.FARMER, village=v))
    people.upsert(User("farmer-gone", "已停用", Role.FARMER, village="sunzigou", active=False))
    people.upsert(User("farmer-nowhere", "没有村", Role.FARMER))  # a county of several: unplaced, never reached
    people.upsert(User("wall", "大屏", Role.KIOSK, village="sunzigou"))
    yield NoticeBook(records, COUNTY)


def user(book: NoticeBook, name: str) -> User:
    found = book.people.get(name)
    assert found is not None
    return found


def reached(book: NoticeBook, author: str, audience: Audience) -> set[str]:
    n = book.send(user(book, author), Draft("今晚有霜冻", "请做好防霜准备", audience=audience), T0)
    return {r.user for r in book.recipients(n.id)}


def test_a_notice_to_two_towns_reaches_exactly_their_people(book: NoticeBook) -> None:
    got = reached(book, "county-1", Audience(towns=("yongning", "wenchang")))
    assert got == people_of("sunzigou", "hexi", "qiaoxi") | {"town-yongning", "town-wenchang"}
    n = book.sent_in(VILLAGES)[0]
    places = {(r.user, r.village, r.town) for r in book.recipients(n.id)}
    assert ("farmer-hexi-2", "hexi", "yongning") in places and ("town-wenchang", "", "wenchang") in places


ACCEPTED = [
    ("county-1", Audience(), people_of(*VILLAGES) | {f"town-{t}" for t in TOWNS}),
    ("county-1", Audience(roles=(Role.TOWN,)), {f"town-{t}" for t in TOWNS}),
    ("county-1", Audience(villages=("qiaoxi",), roles=(Role.FARMER,)), {"farmer-qiaoxi-1", "farmer-qiaoxi-2"}),
    ("county-1", Audience(people=("farmer-dongxi-1", "county-2")), {"farmer-dongxi-1", "county-2"}),
    ("county-1", Audience(towns=("yuanba",), roles=(Role.ADVISER,), people=("farmer-sunzigou-1",)),
     {"adviser-shanglong", "farmer-sunzigou-1"}),
    ("town-yongning", Audience(), people_of("sunzigou", "hexi")),
    ("town-yongning", Audience(villages=("hexi",), roles=(Role.CENTER, Role.ADVISER)),
     {"center-hexi", "adviser-hexi"}),
    ("center-hexi", Audience(), people_of("hexi") - {"center-hexi"}),
    ("center-hexi", Audience(people=("farmer-hexi-2",)), {"farmer-hexi-2"}),
]


@pytest.mark.parametrize(("author", "audience", "expected"), ACCEPTED,
                         ids=[f"{a}-{n}" for n, (a, _, _) in enumerate(ACCEPTED)])
def test_who_a_notice_reaches(book: NoticeBook, author: str, audience: Audience, expected: set[str]) -> None:
    assert reached(book, author, audience) == expected


REFUSED = [
    ("town-yongning", Audience(villages=("qiaoxi",)), "notice.outside_tier"),
    ("town-yongning", Audience(towns=("wenchang",)), "notice.outside_tier"),
    ("town-yongning", Audience(people=("farmer-qiaoxi-1",)), "notice.outside_tier"),
    ("town-yongning", Audience(people=("county-1",)), "notice.outside_tier"),
    ("center-hexi", Audience(villages=("sunzigou",)), "notice.outside_tier"),
    ("center-hexi", Audience(people=("town-yongning",)), "notice.outside_tier"),
    ("center-hexi", Audience(roles=(Role.TOWN,)), "notice.outside_tier"),
    ("farmer-hexi-1", Audience(), "notice.not_staff"),
    ("adviser-hexi", Audience(), "notice.not_staff"),
    ("county-1", Audience(towns=("nowhere",)), "notice.unknown_place"),
    ("county-1", Audience(people=("farmer-gone",)), "notice.unknown_person"),
    ("center-hexi", Audience(roles=(Role.CENTER,)), "notice.nobody"),  # the village's only staff is the writer
]


@pytest.mark.parametrize(("author", "audience", "key"), REFUSED,
                         ids=[f"{a}-{k.split('.')[1]}-{n}" for n, (a, _, k) in enumerate(REFUSED)])
def test_what_a_tier_may_not_send(book: NoticeBook, author: str, audience: Audience, key: str) -> None:
    with pytest.raises(NoticeError) as e:
        book.send(user(book, author), Draft("通知", audience=audience), T0)
    assert e.value.key == key
    assert book.sent_in(VILLAGES) == []  # nothing recorded


def test_reads_confirmations_and_the_read_matrix(book: NoticeBook) -> None:
    n = book.send(user(book, "county-1"), Draft("黄色霜冻预警", confirm=True,
                                                audience=Audience(towns=("yongning", "wenchang"))), T0)
    book.read(n.id, "farmer-sunzigou-1", T0 + 3 * MIN)
    book.read(n.id, "farmer-sunzigou-1", T0 + 9 * MIN)  # a second open keeps the first read
    book.confirm(n.id, "adviser-hexi", T0 + 5 * MIN)  # 收到 without opening first counts as read too
    book.read(n.id, "town-yongning", T0 + 7 * MIN)
    assert book.read(n.id, "farmer-dongxi-1", T0) is None  # not sent to him: nothing recorded
    assert user(book, "farmer-sunzigou-1") and book.recipient(n.id, "farmer-sunzigou-1").read_ns == T0 + 3 * MIN  # type: ignore[union-attr]
    rows = book.matrix(n.id)
    unread_sun = tuple(sorted(people_of("sunzigou") - {"farmer-sunzigou-1"}))
    unread_hexi = tuple(sorted(people_of("hexi") - {"adviser-hexi"}))
    assert rows == [
        PlaceRow("wenchang", "", 1, 0, 0, ("town-wenchang",)),
        PlaceRow("wenchang", "qiaoxi", 4, 0, 0, tuple(sorted(people_of("qiaoxi")))),
        PlaceRow("yongning", "", 1, 1, 0, ()),
        PlaceRow("yongning", "sunzigou", 4, 1, 0, unread_sun),
        PlaceRow("yongning", "hexi", 4, 1, 1, unread_hexi),
    ]
    # A tier sees its own rows only: the town staff of 文昌镇 see 桥溪 and themselves.
    assert [(r.town, r.village) for r in book.matrix(n.id, tier_villages(user(book, "town-wenchang"), COUNTY))] == [
        ("wenchang", ""), ("wenchang", "qiaoxi")]
    assert book.first_read_s(n.id) == 300.0  # median of 3, 5 and 7 minutes
    assert book.unread_count("farmer-sunzigou-1") == 1  # read, but 收到 is still asked for
    book.confirm(n.id, "farmer-sunzigou-1", T0 + 10 * MIN)
    assert book.unread_count("farmer-sunzigou-1") == 0


def test_reminders_go_only_to_the_unread(book: NoticeBook) -> None:
    n = book.send(user(book, "town-yongning"), Draft("冬剪后喷铜", audience=Audience(villages=("hexi",))), T0)
    for who in ("farmer-hexi-1", "adviser-hexi"):
        book.read(n.id, who, T0 + MIN)
    book.queue({(n.id, r.user): [("inbox", 0)] for r in book.recipients(n.id)},
               {(n.id, r.user): "notice" for r in book.recipients(n.id)}, T0)
    assert book.wanted() == []
    assert sorted(book.remind(n.id, T0 + 60 * MIN)) == ["center-hexi", "farmer-hexi-2"]
    assert sorted((r.user, r.wanted) for _, r in book.wanted()) == [("center-hexi", "reminder"),
                                                                    ("farmer-hexi-2", "reminder")]
    assert book.recipient(n.id, "farmer-hexi-1").reminders == 0  # type: ignore[union-attr]
    assert book.recipient(n.id, "farmer-hexi-2").reminders == 1  # type: ignore[union-attr]
    # From a tier that sees only part of the notice: only its own unread
    m = book.send(user(book, "county-1"), Draft("秋施基肥", audience=Audience(towns=("yongning", "wenchang"))), T0)
    assert set(book.remind(m.id, T0 + MIN, villages=["qiaoxi"])) == people_of("qiaoxi") | {"town-wenchang"}


def test_a_confirmation_notice_reminds_the_read_but_unconfirmed(book: NoticeBook) -> None:
    n = book.send(user(book, "center-hexi"), Draft("明早开会", confirm=True), T0)
    book.read(n.id, "farmer-hexi-1", T0 + MIN)
    book.confirm(n.id, "farmer-hexi-2", T0 + MIN)
    assert sorted(book.remind(n.id, T0 + 2 * MIN)) == ["adviser-hexi", "farmer-hexi-1"]


def test_scheduled_reminders_follow_the_clock(book: NoticeBook) -> None:
    n = book.send(user(book, "center-hexi"), Draft("今晚霜冻", remind_every_min=30,
                                                   remind_until_ns=T0 + 100 * MIN), T0)
    assert book.scheduled(T0 + 29 * MIN) == {}
    assert sorted(book.scheduled(T0 + 30 * MIN)[n.id]) == ["adviser-hexi", "farmer-hexi-1", "farmer-hexi-2"]
    assert book.scheduled(T0 + 45 * MIN) == {}  # 30 minutes from the last reminder, not from the start
    book.read(n.id, "farmer-hexi-1", T0 + 50 * MIN)
    assert sorted(book.scheduled(T0 + 60 * MIN)[n.id]) == ["adviser-hexi", "farmer-hexi-2"]
    for who in ("adviser-hexi", "farmer-hexi-2"):
        book.read(n.id, who, T0 + 70 * MIN)
    assert book.scheduled(T0 + 90 * MIN) == {}  # everyone has read it
    m = book.send(user(book, "center-hexi"), Draft("又一条", remind_every_min=30, remind_until_ns=T0 + 40 * MIN), T0)
    assert book.scheduled(T0 + 30 * MIN) == {m.id: ["adviser-hexi", "farmer-hexi-1", "farmer-hexi-2"]}
    assert book.scheduled(T0 + 61 * MIN) == {}  # its schedule has ended


def test_a_withdrawn_notice_reminds_nobody_and_sends_nothing_more(book: NoticeBook) -> None:
    n = book.send(user(book, "center-hexi"), Draft("发错了", remind_every_min=10), T0)
    book.queue({(n.id, "farmer-hexi-1"): [("inbox", 0)]}, {(n.id, "farmer-hexi-1"): "notice"}, T0)
    book.withdraw(n.id, T0 + MIN)
    assert book.wanted() == [] and book.due(T0 + MIN) == []
    assert book.remind(n.id, T0 + 20 * MIN) == [] and book.scheduled(T0 + 20 * MIN) == {}
    assert book.unread_count("farmer-hexi-2") == 0


def test_a_tier_sees_the_notices_that_reached_it(book: NoticeBook) -> None:
    to_wenchang = book.send(user(book, "county-1"), Draft("文昌", audience=Audience(towns=("wenchang",))), T0)
    to_yuanba = book.send(user(book, "county-1"), Draft("元坝", audience=Audience(towns=("yuanba",))), T0 + 1)
    to_town = book.send(user(book, "county-1"), Draft("乡镇", audience=Audience(roles=(Role.TOWN,))), T0 + 2)
    qiaoxi = tier_villages(user(book, "center-qiaoxi"), COUNTY)
    assert [n.id for n in book.sent_in(qiaoxi)] == [to_town.id, to_wenchang.id]  # the town's staff were reached
    assert [n.id for n in book.sent_in(tier_villages(user(book, "town-yuanba"), COUNTY))] == [to_town.id,
                                                                                              to_yuanba.id]
    assert book.for_user("farmer-qiaoxi-1")[0][0].id == to_wenchang.id
    assert [n.id for n, _ in book.for_user("town-wenchang")] == [to_town.id, to_wenchang.id]


def test_people_without_a_place_and_the_tiers_of_each_role() -> None:
    assert tier_villages(User("c", "c", Role.COUNTY), COUNTY) == VILLAGES
    assert tier_villages(User("t", "t", Role.TOWN, town="yongning"), COUNTY) == ["sunzigou", "hexi"]
    assert tier_villages(User("v", "v", Role.CENTER, village="qiaoxi"), COUNTY) == ["qiaoxi"]
    assert tier_villages(User("v", "v", Role.CENTER), COUNTY) == []  # several villages: it must say which
    assert tier_villages(User("f", "f", Role.FARMER, village="qiaoxi"), COUNTY) == []
    with pytest.raises(ValueError, match="town"):
        User("t", "t", Role.TOWN)
