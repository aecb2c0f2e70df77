"""A frost night across twelve plots is one group: one line on the wall, one message per person per escalation
step (through real receivers on loopback), one post on the village's DingTalk group, and one link that reads
and acknowledges them all; each plot's own alarm stays there to ack on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from analytics.notify.channels import build_channels
from analytics.notify.dispatch import Dispatcher
from orchard.grouping import group_alarms
from orchard.links import verify
from orchard.models import Alarm, Severity, Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, User
from orchard.settings import NotifySettings
from orchard.site import SHIPPED, load_site
from tests.analytics.receivers import DING_SECRET, HOOK_SECRET, HttpReceiver, SmtpReceiver

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 10**9
MIN = 60 * NS
LINK_SECRET = "link-secret-for-tests"
PLOTS = [p.id for p in SITE.plots]
NIGHT = int(datetime.fromisoformat("2026-03-15T04:10").replace(tzinfo=SITE.tz).timestamp() * NS)


def alarm(i: int, rule: str, started_s: float, severity: str = "major", plot: str | None = "p01") -> Alarm:
    return Alarm(i, SITE.id, f"plot:{plot}", rule, Severity(severity), plot, None, NIGHT + int(started_s * NS),
                 NIGHT, None, None, None, None, f"alarm.{rule}_text", {})


@pytest.mark.parametrize(
    ("case", "alarms", "groups"),
    [
        ("one rule on three plots within minutes", [alarm(1, "spring_frost", 0, plot="p01"),
                                                    alarm(2, "spring_frost", 40, plot="p02"),
                                                    alarm(3, "spring_frost", 600, plot="p03")], [[1, 2, 3]]),
        ("the same rule an hour later is a group of its own", [alarm(1, "spring_frost", 0),
                                                               alarm(2, "spring_frost", 3600, plot="p02")],
         [[2], [1]]),
        ("two rules at once are two groups, the worse first", [alarm(1, "psa_risk", 0, "warning"),
                                                               alarm(2, "spring_frost", 5, "critical", "p02"),
                                                               alarm(3, "psa_risk", 6, "warning", "p03")],
         [[2], [1, 3]]),
        ("a group is as bad as its worst alarm", [alarm(1, "spring_frost", 0, "warning"),
                                                  alarm(2, "spring_frost", 30, "critical", "p02"),
                                                  alarm(3, "heat", 60, "major", "p03")], [[1, 2], [3]]),
    ],
)
def test_group_alarms(case: str, alarms: list[Alarm], groups: list[list[int]]) -> None:
    assert [[a.id for a in g.alarms] for g in group_alarms(alarms)] == groups, case


def test_a_group_says_its_plots_and_its_worst_severity() -> None:
    (g,) = group_alarms([alarm(5, "spring_frost", 0, "warning", "p03"), alarm(6, "spring_frost", 10, "critical",
                                                                             "p01")])
    assert (g.type, g.severity, g.plots, g.started_ns, g.key, len(g)) == (
        "spring_frost", "critical", ("p03", "p01"), NIGHT, "spring_frost:5", 2)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    r = Records(f"sqlite:///{tmp_path}/records.sqlite")
    people = People(r)
    people.upsert(User("wang", "王建国", "farmer", "zh", "13800000001", None, ("sms",)))
    people.upsert(User("chen", "陈大姐", "farmer", "zh", "13800000004", None, ("webhook",)))
    people.upsert(User("li", "李农技", "adviser", "zh", "13800000002", "li@example.cn", ("email",)))
    people.upsert(User("zhao", "赵主任", "center", "zh", "13800000003", None, ("sms",)))
    people.set_plots("wang", PLOTS[:3], "owns")
    people.set_plots("chen", PLOTS[3:], "owns")
    people.set_plots("li", PLOTS, "covers")
    yield r
    r.close()


def frost(plot: str) -> Signal:
    return Signal(SITE.id, f"plot:{plot}", "spring_frost", "critical", "alarm.spring_frost_text",
                  {"plot": plot, "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, plot=plot)


def cfg_for(rx: HttpReceiver, smtp_port: int, **extra: object) -> NotifySettings:
    return NotifySettings.model_validate({
        "public_url": "https://orchard.example.cn", "link_secret": LINK_SECRET, "sms_url": f"{rx.base}/sms",
        "webhook_url": f"{rx.base}/hook", "webhook_secret": HOOK_SECRET, "smtp_url": f"smtp://127.0.0.1:{smtp_port}",
        "dingtalk_url": f"{rx.base}/robot/send?access_token=abc", "dingtalk_secret": DING_SECRET,
        "timeout_s": 2.0, **extra})


def test_a_frost_night_across_twelve_plots_is_one_message_per_person_per_step(records: Records) -> None:
    assert len(PLOTS) == 12
    rx = HttpReceiver().start()
    try:
        with SmtpReceiver() as smtp:
            cfg = cfg_for(rx, smtp.port)
            book, outbox = AlarmBook(records), Outbox(records)
            d = Dispatcher(SITE, People(records), outbox, book, build_channels(cfg, httpx.Client(timeout=2)), cfg)
            # The cold reaches the plots over three cycles, 10 s apart (the valley first).
            for k, plots in enumerate((PLOTS[:5], PLOTS[5:9], PLOTS[9:])):
                now = NIGHT + k * 10 * NS
                changes = [book.fire(frost(p), now) for p in plots]
                d.on_changes(changes, now)
                assert d.deliver(now) == {}  # each waits a moment for the rest of its group
            assert d.deliver(NIGHT + 30 * NS) == {"sent": 12}  # the farmers: one message each, all their plots

            sms = [r.json() for r in rx.got if r.path == "/sms"]
            hooks = [r.json() for r in rx.got if r.path == "/hook"]
            assert [s["phone"] for s in sms] == ["13800000001"] and len(hooks) == 1
            assert "春季晚霜冻 · 3 个地块" in sms[0]["text"]
            assert hooks[0]["recipient"] == "chen" and "9 个地块" in hooks[0]["subject"]
            assert len(hooks[0]["alarm_ids"]) == 9  # for another system: every alarm the message tells of

            assert d.escalate(NIGHT + 5 * MIN) == 12  # the adviser: all twelve at once, on the group's clock
            assert d.deliver(NIGHT + 5 * MIN + 30 * NS) == {"sent": 12}
            (mail,) = smtp.messages
            assert "12 个地块" in str(mail["Subject"])
            body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert all(SITE.plot_label(p, "zh") in body for p in PLOTS)

            assert d.escalate(NIGHT + 15 * MIN) == 12  # the command center
            d.deliver(NIGHT + 15 * MIN + 30 * NS)
            assert [s["phone"] for s in (r.json() for r in rx.got if r.path == "/sms")] == [
                "13800000001", "13800000003"]

            # Wang's one link reads all three of his plots' notifications; each plot's alarm is still its own.
            token = sms[0]["text"].split("receipt?t=")[1].split()[0]
            first = outbox.get(verify(token, LINK_SECRET, NIGHT / NS + 60))
            assert first is not None
            together = outbox.sent_with(first)
            assert sorted(book.get(n.alarm_id).plot or "" for n in together) == sorted(PLOTS[:3])
            assert len({n.alarm_id for n in together}) == 3 and len(book.active()) == 12
    finally:
        rx.stop()


def test_an_alarm_after_the_group_went_out_goes_on_its_own(records: Records) -> None:
    """The group wait holds a message 30 s: a plot that freezes ten minutes later is told then, not held back."""
    rx = HttpReceiver().start()
    try:
        cfg = cfg_for(rx, 1)
        book, outbox = AlarmBook(records), Outbox(records)
        d = Dispatcher(SITE, People(records), outbox, book, build_channels(cfg, httpx.Client(timeout=2)), cfg)
        d.on_changes([book.fire(frost("p01"), NIGHT)], NIGHT)
        assert d.deliver(NIGHT + 29 * NS) == {}
        assert d.deliver(NIGHT + 30 * NS) == {"sent": 1}
        later = NIGHT + 10 * MIN
        d.on_changes([book.fire(frost("p02"), later)], later)
        assert d.deliver(later + 30 * NS) == {"sent": 1}
        texts = [r.json()["text"] for r in rx.got if r.path == "/sms"]
        assert len(texts) == 2 and not any("个地块" in t for t in texts)  # each alone, its own plot named
        assert SITE.plot_label("p02", "zh") in texts[1]
    finally:
        rx.stop()


def test_the_village_robot_gets_one_post_for_the_group(records: Records) -> None:
    people = People(records)
    for name in ("wang", "chen"):
        u = people.get(name)
        assert u is not None
        people.upsert(User(u.name, u.display, u.role, u.lang, u.phone, None, ("dingtalk",)))
    rx = HttpReceiver().start()
    try:
        cfg = cfg_for(rx, 1)
        book, outbox = AlarmBook(records), Outbox(records)
        d = Dispatcher(SITE, people, outbox, book, build_channels(cfg, httpx.Client(timeout=2)), cfg)
        d.on_changes([book.fire(frost(p), NIGHT) for p in PLOTS], NIGHT)
        assert d.deliver(NIGHT + 30 * NS) == {"sent": 12}
        (post,) = [r.json() for r in rx.got if r.path == "/robot/send"]
        assert sorted(post["at"]["atMobiles"]) == ["13800000001", "13800000004"]
        text = post["markdown"]["text"]
        assert "12 个地块" in post["markdown"]["title"] and text.count("receipt?t=") == 2  # one link each
    finally:
        rx.stop()
