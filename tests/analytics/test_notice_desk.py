"""Notices out through real receivers on loopback (analytics/notify/notices.py): each person on their own channels
with their own signed link, which opens to exactly their read; one robot post per notice that @-mentions everyone;
quiet hours hold a normal notice but not an urgent one or a red warning; retries; reminders reach only the
unread; the analytics service's full cycle sends them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from analytics.notify.channels import build_channels
from analytics.notify.notices import NoticeDesk
from orchard.county import one_village
from orchard.links import LinkError, verify, verify_notice
from orchard.records import Records
from orchard.records.notices import Audience, Draft, Level, NoticeBook, Urgency
from orchard.records.people import People, Role, User
from orchard.settings import NotifySettings
from orchard.site import SHIPPED, load_site
from tests.analytics.conftest import at
from tests.analytics.receivers import DING_SECRET, HOOK_SECRET, HttpReceiver, SmtpReceiver

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 10**9
MIN = 60 * NS
LINK_SECRET = "link-secret-for-notices"


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    r = Records(f"sqlite:///{tmp_path}/records.sqlite")
    people = People(r)
    people.upsert(User("zhao", "赵主任", Role.CENTER, "zh", "13800000009", None, ("inbox",)))
    people.upsert(User("wang", "王建国", Role.FARMER, "zh", "13800000001", None, ("dingtalk",),
                       quiet_from="22:00", quiet_to="06:30"))
    people.upsert(User("liu", "刘桂兰", Role.FARMER, "zh", "13800000004", None, ("dingtalk", "sms")))
    people.upsert(User("li", "李农技", Role.ADVISER, "en", "13800000002", "li@example.cn", ("email",)))
    people.upsert(User("chen", "陈会计", Role.ADVISER, "zh", None, None, ("webhook",)))
    yield r
    r.close()


def desk_for(records: Records, rx: HttpReceiver, smtp_port: int, **extra: object) -> tuple[NoticeDesk, NoticeBook]:
    values: dict[str, object] = {
        "public_url": "https://orchard.example.cn", "link_secret": LINK_SECRET,
        "dingtalk_url": f"{rx.base}/robot/send?access_token=abc", "dingtalk_secret": DING_SECRET,
        "webhook_url": f"{rx.base}/hook", "webhook_secret": HOOK_SECRET, "sms_url": f"{rx.base}/sms",
        "smtp_url": f"smtp://127.0.0.1:{smtp_port}", "retry_base_s": 10, "timeout_s": 1.0}
    cfg = NotifySettings(**{**values, **extra})  # type: ignore[arg-type]
    book = NoticeBook(records, one_village(SITE))
    channels = build_channels(cfg, httpx.Client(timeout=cfg.timeout_s))
    return NoticeDesk(book, People(records), channels, cfg, SITE.tz), book


def author(records: Records) -> User:
    found = People(records).get("zhao")
    assert found is not None
    return found


def test_each_person_gets_it_on_their_channels_with_their_own_link(records: Records,
                                                                   http_receiver: HttpReceiver) -> None:
    now = at("2026-03-14T16:00")
    with SmtpReceiver() as smtp:
        desk, book = desk_for(records, http_receiver, smtp.port)
        n = book.send(author(records), Draft("今晚有霜冻", "最低 -3°C，请今晚 10 点前开启防霜设备。",
                                             level=Level.ORANGE, plots=("sunzigou/p01",), confirm=True), now)
        counts = desk.cycle(now)
        assert counts == {"queued": 5, "sent": 5}  # wang and liu share one robot post; liu's SMS; li; chen
        posts = [g for g in http_receiver.got if g.path == "/robot/send"]
        assert len(posts) == 1
        body = posts[0].json()
        assert sorted(body["at"]["atMobiles"]) == ["13800000001", "13800000004"]
        text = body["markdown"]["text"]
        assert "今晚有霜冻" in text and "橙色预警" in text and "赵主任" in text and "sunzigou/p01" in text
        tokens = [t.split(")")[0] for t in text.split("receipt?n=")[1:]]
        assert sorted(verify_notice(t, LINK_SECRET, now / NS)[1] for t in tokens) == ["liu", "wang"]
        assert all(verify_notice(t, LINK_SECRET, now / NS)[0] == n.id for t in tokens)
        with pytest.raises(LinkError):  # a notice's token is no alarm notification's, nor the other way round
            verify(tokens[0], LINK_SECRET, now / NS)
        (mail,) = smtp.messages
        assert mail["To"] == "li@example.cn" and "Notice" in str(mail["Subject"])  # in his language
        hook = next(g for g in http_receiver.got if g.path == "/hook").json()
        assert hook["recipient"] == "chen" and "今晚有霜冻" in hook["subject"]
        sms = next(g for g in http_receiver.got if g.path == "/sms").json()
        assert sms["phone"] == "13800000004" and "今晚有霜冻" in sms["text"]
        assert {(d.user, d.channel, d.status) for d in book.deliveries(n.id)} == {
            ("wang", "dingtalk", "sent"), ("liu", "dingtalk", "sent"), ("liu", "sms", "sent"),
            ("li", "email", "sent"), ("chen", "webhook", "sent")}
        assert desk.cycle(now + MIN) == {"queued": 0}  # nothing twice


def test_quiet_hours_hold_a_normal_notice_not_an_urgent_one_or_a_red_warning(records: Records,
                                                                             http_receiver: HttpReceiver) -> None:
    night = at("2026-03-14T23:10")
    desk, book = desk_for(records, http_receiver, 1)
    only_wang = Audience(people=("wang",))
    normal = book.send(author(records), Draft("明天开会", audience=only_wang), night)
    urgent = book.send(author(records), Draft("水渠决口", urgency=Urgency.URGENT, audience=only_wang), night)
    red = book.send(author(records), Draft("暴雨", level=Level.RED, audience=only_wang), night)
    desk.cycle(night)
    (held,) = book.deliveries(normal.id)
    assert held.status == "pending" and held.next_try_ns == at("2026-03-15T06:30")
    assert [d.status for d in book.deliveries(urgent.id) + book.deliveries(red.id)] == ["sent", "sent"]
    desk.cycle(at("2026-03-15T06:30"))
    assert book.deliveries(normal.id)[0].status == "sent"


def test_a_failing_receiver_is_retried_and_a_refusal_is_not(records: Records, http_receiver: HttpReceiver) -> None:
    now = at("2026-03-14T10:00")
    http_receiver.fail_first = 2
    desk, book = desk_for(records, http_receiver, 1)
    n = book.send(author(records), Draft("检查设备", audience=Audience(people=("chen",))), now)
    assert desk.cycle(now) == {"queued": 1, "retry": 1}
    assert desk.cycle(now + 5 * NS) == {"queued": 0}  # not due yet
    assert desk.cycle(now + 10 * NS) == {"queued": 0, "retry": 1}
    assert desk.cycle(now + 30 * NS) == {"queued": 0, "sent": 1}
    (d,) = book.deliveries(n.id)
    assert (d.status, d.attempts) == ("sent", 3)
    desk_bad, book_bad = desk_for(records, http_receiver, 1, dingtalk_secret="SECnot-the-robots-secret")
    m = book_bad.send(author(records), Draft("另一条", audience=Audience(people=("wang",))), now)
    http_receiver.fail_first = 0
    desk_bad.cycle(now)
    (d,) = book_bad.deliveries(m.id)
    assert d.status == "failed" and "310000" in (d.last_error or "")


def test_reminders_reach_only_the_unread(records: Records, http_receiver: HttpReceiver) -> None:
    now = at("2026-03-14T09:00")
    desk, book = desk_for(records, http_receiver, 1)
    n = book.send(author(records), Draft("冬剪后喷铜", audience=Audience(roles=(Role.FARMER,))), now)
    desk.cycle(now)
    book.read(n.id, "wang", now + 10 * MIN)
    assert book.remind(n.id, now + 60 * MIN) == ["liu"]
    before = len(http_receiver.got)
    assert desk.cycle(now + 60 * MIN) == {"queued": 2, "sent": 2}  # liu's robot mention and SMS
    new = http_receiver.got[before:]
    robot = next(g for g in new if g.path == "/robot/send").json()
    assert robot["at"]["atMobiles"] == ["13800000004"] and "【提醒】" in robot["markdown"]["text"]
    assert {(d.user, d.kind) for d in book.deliveries(n.id) if d.kind == "reminder"} == {("liu", "reminder")}


def test_a_notice_on_a_schedule_reminds_the_unread_by_itself(records: Records, http_receiver: HttpReceiver) -> None:
    now = at("2026-03-14T09:00")
    desk, book = desk_for(records, http_receiver, 1)
    n = book.send(author(records), Draft("今晚有霜冻", audience=Audience(people=("wang", "chen")),
                                         remind_every_min=30, remind_until_ns=now + 120 * MIN), now)
    desk.cycle(now)
    book.read(n.id, "chen", now + 5 * MIN)
    assert desk.cycle(now + 29 * MIN) == {"queued": 0}
    assert desk.cycle(now + 30 * MIN) == {"queued": 1, "sent": 1}
    assert [(d.user, d.kind) for d in book.deliveries(n.id) if d.kind == "reminder"] == [("wang", "reminder")]


def test_a_notice_to_a_thousand_people_goes_out_in_one_cycle(records: Records, http_receiver: HttpReceiver) -> None:
    """A county's warning reaches thousands: the desk sends batch after batch in one cycle, not 200 a minute."""
    now = at("2026-03-14T16:00")
    people = People(records)
    for k in range(1000):
        people.upsert(User(f"f{k:04d}", f"果农{k}", Role.FARMER))
    desk, book = desk_for(records, http_receiver, 1)
    n = book.send(author(records), Draft("寒潮蓝色预警", level=Level.BLUE, audience=Audience(roles=(Role.FARMER,))),
                  now)
    started = time.monotonic()
    counts = desk.cycle(now)
    took = time.monotonic() - started
    # 1,000 inboxes, wang's robot mention, liu's robot mention and SMS
    assert counts["queued"] == 1003 and counts["sent"] == 1003, counts
    assert sum(d.status == "sent" for d in book.deliveries(n.id)) == 1003
    print(f"1,003 deliveries in one cycle: {took:.1f} s")


def test_sent_while_the_records_db_went_away_is_recorded_later_and_not_sent_twice(
        records: Records, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    now = at("2026-03-14T10:00")
    desk, book = desk_for(records, http_receiver, 1)
    n = book.send(author(records), Draft("检查设备", audience=Audience(people=("chen",))), now)
    real_sent = book.sent

    def away(*_: object) -> None:
        raise OperationalError("UPDATE", {}, ConnectionError("records DB away"))

    monkeypatch.setattr(book, "sent", away)
    with pytest.raises(OperationalError):
        desk.cycle(now)  # the webhook got it; the records DB did not hear of it
    assert len([g for g in http_receiver.got if g.path == "/hook"]) == 1
    monkeypatch.setattr(book, "sent", real_sent)
    desk.cycle(now + 60 * NS)
    assert len([g for g in http_receiver.got if g.path == "/hook"]) == 1  # not sent again
    (d,) = book.deliveries(n.id)
    assert (d.status, d.sent_ns) == ("sent", now)
