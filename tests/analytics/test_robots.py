"""Group robots under their vendors' limits, through a real HTTP receiver on loopback that enforces them as
DingTalk does (20 posts a minute, then everything refused for 10 minutes): a frost night over 60 plots reaches
everyone without one refused post, critical first; a robot that refuses for good is not retried and raises a
channel alarm for the command center; a throttled robot's messages wait and go out; the digest is one post."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from analytics.notify.channels import build_channels
from analytics.notify.compose import Message
from analytics.notify.digest import Digest
from analytics.notify.dispatch import Dispatcher
from analytics.notify.robots import Item, Mention, RobotGate, pack
from bench.alarms import write_site
from orchard.links import verify
from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.outbox import Outbox
from orchard.records.people import People, User
from orchard.records.workorders import WorkOrders
from orchard.settings import NotifySettings
from orchard.site import Site, load_site
from tests.analytics.receivers import DING_SECRET, HttpReceiver

NS = 10**9
MIN = 60 * NS
LINK_SECRET = "link-secret-for-robot-tests"
TOKEN = re.compile(r"receipt\?t=([\w.-]+)\)")
ICON_OF = {"critical": "🔴", "major": "🟠", "warning": "🟡"}


class Clock:
    """The one clock of a test: the dispatcher judges by it and the receiver counts its minute by it."""

    def __init__(self, start_ns: int) -> None:
        self.ns = start_ns

    def seconds(self) -> float:
        return self.ns / NS


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return load_site(write_site(tmp_path_factory.mktemp("site60"), 60))


def t0(site: Site) -> int:
    return int(datetime.fromisoformat("2026-03-15T03:40").replace(tzinfo=site.tz).timestamp() * NS)


@pytest.fixture
def people(site: Site, tmp_path: Path) -> Iterator[Records]:
    """A farmer per plot, three advisers covering twenty plots each, two at the command center (who also have
    SMS); everyone on the village's DingTalk group and the inbox."""
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    book = People(records)
    for i, plot in enumerate(site.plots):
        book.upsert(User(f"farmer{i}", f"农户{i + 1}", "farmer", "zh", f"1390000{i:04d}", None, ("dingtalk", "inbox")))
        book.set_plots(f"farmer{i}", [plot.id], "owns")
    for a in range(3):
        book.upsert(User(f"adviser{a}", f"农技员{a + 1}", "adviser", "zh", f"1380000{a:04d}", None, ("dingtalk",)))
        book.set_plots(f"adviser{a}", [p.id for p in site.plots[a * 20:(a + 1) * 20]], "covers")
    for c in range(2):
        book.upsert(User(f"center{c}", f"指挥中心{c + 1}", "center", "zh", f"1370000{c:04d}", None,
                         ("dingtalk", "sms")))
    yield records
    records.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver(per_min=20, throttle_s=600).start()
    yield r
    r.stop()


def settings(rx: HttpReceiver, secret: str = DING_SECRET) -> NotifySettings:
    return NotifySettings.model_validate({
        "public_url": "https://orchard.example.cn", "link_secret": LINK_SECRET, "dingtalk_secret": secret,
        "dingtalk_url": f"{rx.base}/robot/send?access_token=abc", "sms_url": f"{rx.base}/sms", "timeout_s": 2.0,
        "retry_base_s": 10, "group_wait_s": 0})


def dispatcher(site: Site, records: Records, cfg: NotifySettings) -> Dispatcher:
    return Dispatcher(site, People(records), Outbox(records), AlarmBook(records),
                      build_channels(cfg, httpx.Client(timeout=cfg.timeout_s)), cfg)


def frost(site: Site, plot: str, severity: str) -> Signal:
    return Signal(site.id, f"plot:{plot}", "spring_frost", severity, "alarm.spring_frost_text",
                  {"plot": plot, "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, plot=plot)


def posted_ids(rx: HttpReceiver, since: int = 0) -> list[int]:
    """The notification behind every personal link the robot posted, in the order they arrived."""
    return [verify(tok, LINK_SECRET, 0) for r in rx.got[since:] if r.path == "/robot/send"
            for tok in TOKEN.findall(r.json()["markdown"]["text"])]


def plot_severities_in_order(rx: HttpReceiver) -> list[str]:
    """A group post's plots, one a line, each with its severity's icon when they differ."""
    by_icon = {v: k for k, v in ICON_OF.items()}
    return [by_icon[line[2]] for r in rx.got for line in r.json()["markdown"]["text"].splitlines()
            if line.startswith("- ") and line[2:3] in by_icon and "［" not in line]


def severities_in_order(rx: HttpReceiver, since: int = 0) -> list[str]:
    by_icon = {v: k for k, v in ICON_OF.items()}
    out = []
    for r in rx.got[since:]:
        for line in r.json()["markdown"]["text"].splitlines():
            head = line.removeprefix("- ").removeprefix("### ")[:1]
            if head in by_icon and "［" in line:  # an alarm's line (its subject: the severity in brackets)
                out.append(by_icon[head])
    return out


def test_a_frost_night_over_sixty_plots_reaches_everyone_critical_first_and_no_post_is_refused(
        site: Site, people: Records, receiver: HttpReceiver) -> None:
    clock = Clock(t0(site))
    receiver.clock = clock.seconds
    d = dispatcher(site, people, settings(receiver))
    book, outbox = AlarmBook(people), Outbox(people)
    # Fired in an order that is not the order of severity: the valley plots are the critical ones.
    severity = {p.id: ("critical", "major", "warning")[i % 3] for i, p in enumerate(site.plots)}
    alarms = []
    for plot in reversed(site.plots):
        alarm, how = book.fire(frost(site, plot.id, severity[plot.id]), clock.ns)
        d.on_changes([(alarm, how)], clock.ns)
        alarms.append(alarm)

    first = d.deliver(clock.ns)
    # Every farmer hears it now, not minutes later: all 60 alarms in this minute's posts (plus the inbox). They
    # are one group (one rule, raised together): a few posts, each within the robot's size, not sixty.
    assert first == {"sent": 120}
    assert 1 < len(receiver.got) <= 4
    assert all(len(r.json()["markdown"]["text"].encode()) <= 4000 for r in receiver.got)
    dings = [n for a in alarms for n in outbox.for_alarm(a.id) if n.channel == "dingtalk"]
    linked = posted_ids(receiver)
    assert {outbox.get(i).user for i in linked} == {n.user for n in dings}  # type: ignore[union-attr]
    assert len(linked) == len(set(linked)) == 60  # one personal link per farmer
    # Critical first: within the group's posts, the plots go from the worst to the least.
    order = plot_severities_in_order(receiver)
    assert len(order) == 60
    assert order == sorted(order, key=("critical", "major", "warning").index)
    # Each farmer is @-mentioned in the post that carries their plot.
    for r in receiver.got:
        body = r.json()
        for phone in body["at"]["atMobiles"]:
            assert f"@{phone}" in body["markdown"]["text"]

    # The night goes on: advisers at 5 and 15 min for the critical ones, the center, reminders every 10 min.
    for _ in range(80):  # 40 minutes in 30-s steps
        clock.ns += 30 * NS
        d.escalate(clock.ns)
        d.deliver(clock.ns)
    assert receiver.refused == [] and receiver.too_fast == []
    robot_notes = [n for a in alarms for n in outbox.for_alarm(a.id) if n.channel == "dingtalk"]
    assert {n.status for n in robot_notes} == {"sent"}
    assert len(posted_ids(receiver)) == len(set(posted_ids(receiver)))  # each link once
    reached = {n.user for n in robot_notes}
    assert reached == {u.name for u in People(people).all()}  # farmers, advisers and the center


def test_a_robot_that_refuses_for_good_is_not_retried_and_the_center_hears_of_it(
        site: Site, people: Records, receiver: HttpReceiver) -> None:
    clock = Clock(t0(site))
    d = dispatcher(site, people, settings(receiver, secret="SECwrong"))  # the robot's signing secret mistyped
    book, outbox = AlarmBook(people), Outbox(people)
    alarm, how = book.fire(frost(site, site.plots[0].id, "critical"), clock.ns)
    d.on_changes([(alarm, how)], clock.ns)
    assert d.deliver(clock.ns) == {"failed": 1, "sent": 1}  # DingTalk refused; the farmer's inbox has it
    (ding,) = [n for n in outbox.for_alarm(alarm.id) if n.channel == "dingtalk"]
    assert (ding.status, ding.attempts) == ("failed", 1) and "sign not match" in (ding.last_error or "")
    (broken,) = [a for a in book.active() if a.type == "channel_failed"]
    assert (broken.source, broken.severity, broken.details["channel_id"]) == ("channel:dingtalk", "major", "dingtalk")
    words = alarm_text(broken, "zh", site)
    assert "钉钉机器人" in words.text and "sign not match" in words.text and "DINGTALK_SECRET" in words.advice
    # The center hears of it on its other channel, never through the robot that refuses.
    told = {(n.user, n.channel) for n in outbox.for_alarm(broken.id)}
    assert told == {("center0", "sms"), ("center1", "sms")}
    refused = len(receiver.refused)
    for _ in range(10):  # nothing is tried again on the robot, however long we wait
        clock.ns += MIN
        d.deliver(clock.ns)
    assert len(receiver.refused) == refused
    sms = [r.json() for r in receiver.got if r.path == "/sms"]
    assert {m["phone"] for m in sms} == {"13700000000", "13700000001"} and "告警渠道故障" in sms[0]["text"]

    # Fixed and restarted: the next post gets through and clears the channel alarm.
    fixed = dispatcher(site, people, settings(receiver))
    later, how = book.fire(frost(site, site.plots[1].id, "critical"), clock.ns)
    fixed.on_changes([(later, how)], clock.ns)
    fixed.deliver(clock.ns)
    assert [a for a in book.active() if a.type == "channel_failed"] == []
    assert {n.kind for n in outbox.for_alarm(broken.id)} == {"alarm", "cleared"}


def test_a_robot_throttled_by_someone_else_holds_its_messages_until_the_throttle_ends(
        site: Site, people: Records, receiver: HttpReceiver) -> None:
    clock = Clock(t0(site))
    receiver.clock = clock.seconds
    for _ in range(21):  # another system used up this robot's minute: DingTalk throttles it for 10 minutes
        receiver.admit("/robot/send")
    d = dispatcher(site, people, settings(receiver))
    book, outbox = AlarmBook(people), Outbox(people)
    alarm, how = book.fire(frost(site, site.plots[0].id, "critical"), clock.ns)
    d.on_changes([(alarm, how)], clock.ns)
    assert d.deliver(clock.ns) == {"waiting": 1, "sent": 1}
    (ding,) = [n for n in outbox.for_alarm(alarm.id) if n.channel == "dingtalk"]
    assert (ding.status, ding.attempts, ding.next_try_ns) == ("pending", 0, clock.ns + 10 * MIN)
    assert [a.message for a in book.active() if a.type == "channel_failed"] == ["alarm.channel_throttled_text"]
    tries = len(receiver.too_fast)
    clock.ns += 9 * MIN
    d.deliver(clock.ns)
    assert len(receiver.too_fast) == tries  # left alone while throttled
    clock.ns += MIN
    d.deliver(clock.ns)
    (ding,) = [n for n in outbox.for_alarm(alarm.id) if n.channel == "dingtalk"]
    assert ding.status == "sent" and posted_ids(receiver) == [ding.id]
    assert [a for a in book.active() if a.type == "channel_failed"] == []


def test_a_restarted_dispatcher_counts_the_posts_made_this_minute(site: Site, people: Records,
                                                                   receiver: HttpReceiver) -> None:
    clock = Clock(t0(site))
    receiver.clock = clock.seconds
    book = AlarmBook(people)
    first = dispatcher(site, people, settings(receiver))
    for k, plot in enumerate(site.plots[:18]):  # warnings for the farmers, each raised 20 minutes after the one
        started = clock.ns - (18 - k) * 20 * MIN  # before (18 groups): one post each, the minute's whole budget
        alarm, how = book.fire(frost(site, plot.id, "warning"), started)
        first.on_changes([(alarm, how)], clock.ns)
    first.deliver(clock.ns)
    assert len(receiver.got) == 18
    clock.ns += 10 * NS
    again = dispatcher(site, people, settings(receiver))  # analytics restarted; its gate starts empty
    for plot in site.plots[18:20]:
        alarm, how = book.fire(frost(site, plot.id, "critical"), clock.ns)
        again.on_changes([(alarm, how)], clock.ns)
    assert again.deliver(clock.ns) == {"waiting": 2, "sent": 2}  # the inboxes; the robot's minute is full
    clock.ns += 59 * NS  # the earlier posts are counted as made at the restart, the safe side
    assert again.deliver(clock.ns) == {}
    clock.ns += 2 * NS
    assert again.deliver(clock.ns) == {"sent": 2}
    assert receiver.too_fast == []


def test_the_digest_is_one_post_per_robot(site: Site, people: Records, receiver: HttpReceiver,
                                          tmp_path: Path) -> None:
    cfg = settings(receiver)
    book = AlarmBook(people)
    digest = Digest(site, people, People(people), book, WorkOrders(people, tmp_path / "photos"),
                    build_channels(cfg, httpx.Client(timeout=2)), "07:30")
    morning = int(datetime.fromisoformat("2026-03-15T07:31").replace(tzinfo=site.tz).timestamp() * NS)
    assert digest.send(morning) == {"sent": 7}  # five people on the robot, the center's two SMS
    (post,) = [r.json() for r in receiver.got if r.path == "/robot/send"]
    assert post["at"]["atMobiles"] == ["13700000000", "13700000001", "13800000000", "13800000001", "13800000002"]
    assert "一切正常" in post["markdown"]["text"]
    assert digest.send(morning + 60 * NS) == {}
    assert len([r for r in receiver.got if r.path == "/robot/send"]) == 1


def item(n: int, severity: str, people: int = 1) -> Item:
    msg = Message(n, severity, f"[{severity}] 春季晚霜冻 · {n}号园", f"### {severity} {n}\n- 详细", "", None)
    users = tuple(Mention(User(f"u{n}-{k}", f"农户{n}-{k}", "farmer", "zh", f"139{n:04d}{k:04d}"),
                          f"https://orchard.example.cn/receipt?t={'x' * 40}") for k in range(people))
    return Item((n, "alarm", 0), severity, n, msg, users, "气温 -2.1°C", "春季晚霜冻：启动防霜措施")


@pytest.mark.parametrize(("alarms", "people", "budget", "posts", "left", "links"), [
    (5, 1, 18, 5, 0, True),  # room for each alone
    (60, 1, 18, 4, 0, True),  # combined, all now
    (60, 1, 2, 2, 23, True),  # two posts' worth now, the rest at the next free slot
    (3, 20, 18, 3, 0, True),  # a center of 20: each alarm still its own post, under the size limit
    (1, 60, 1, 1, 0, False),  # too many people for one post with their links: names only, still one post
    (4, 1, 0, 0, 4, True),  # the minute is full
])
def test_pack_keeps_the_budget_the_size_and_the_order(alarms: int, people: int, budget: int, posts: int,
                                                      left: int, links: bool) -> None:
    items = [item(n, ("warning", "critical", "major")[n % 3], people) for n in range(alarms)]
    out, waiting = pack(items, budget, 4000, at_phone=True)
    assert (len(out), len(waiting)) == (posts, left)
    assert max((len(p.markdown.encode()) for p in out), default=0) <= 4000
    assert all(("receipt?t=" in p.markdown) == links for p in out)
    sent = [i.severity for p in out for i in p.items]
    assert sent == sorted(sent, key=("critical", "major", "warning").index)
    assert sorted([i.key for p in out for i in p.items] + [i.key for i in waiting]) == sorted(i.key for i in items)
    for p in out:  # everyone an item is for is @-mentioned in the post that carries it
        assert {m.user.phone for i in p.items for m in i.mentions} == set(p.phones)
        assert all(f"@{phone}" in p.markdown for phone in p.phones)


def test_the_gate_allows_a_minute_s_posts_then_the_next_free_slot() -> None:
    gate = RobotGate(per_min=3, throttle_s=600)
    gate.record(0)
    gate.record(10 * NS, 2)
    assert (gate.available(30 * NS), gate.next_free(30 * NS)) == (0, 60 * NS + 1)
    assert gate.available(60 * NS + 1) == 1
    assert gate.throttled(61 * NS) == 661 * NS and gate.available(660 * NS) == 0 and gate.available(661 * NS) == 3
