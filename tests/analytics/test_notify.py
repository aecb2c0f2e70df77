"""Alarm messages through real receivers on loopback: routing, escalation, quiet hours, retries, a receiver that
never answers, signed links and read receipts, MQTT alerts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from paho.mqtt.client import MQTTMessage

from analytics.notify.channels import AlertPublisher, build_channels
from analytics.notify.dispatch import Dispatcher, Escalation
from bench.servers import Mosquitto
from orchard.links import LinkError, verify
from orchard.models import Signal
from orchard.mqtt import connect_to, make_client
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, User
from orchard.settings import NotifySettings
from orchard.site import SHIPPED, load_site
from tests.analytics.conftest import at
from tests.analytics.receivers import DING_SECRET, HOOK_SECRET, HttpReceiver, SmtpReceiver
from tests.conftest import unique

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 10**9
MIN = 60 * NS
LINK_SECRET = "link-secret-for-tests"


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    r = Records(f"sqlite:///{tmp_path}/records.sqlite")
    people = People(r)
    people.upsert(User("wang", "王建国", "farmer", "zh", "13800000001", "wang@example.cn", ("dingtalk", "inbox")))
    people.upsert(User("li", "李农技", "adviser", "zh", "13800000002", "li@example.cn", ("email", "webhook")))
    people.upsert(User("zhao", "赵主任", "center", "en", "13800000003", None, ("sms",)))
    people.set_plots("wang", ["p01"], "owns")
    people.set_plots("li", ["p01", "p02"], "covers")
    yield r
    r.close()


def settings_for(rx: HttpReceiver, smtp_port: int, **extra: object) -> NotifySettings:
    return NotifySettings(public_url="https://orchard.example.cn", link_secret=LINK_SECRET,  # type: ignore[arg-type]
                          dingtalk_url=f"{rx.base}/robot/send?access_token=abc",  # type: ignore[arg-type]
                          dingtalk_secret=DING_SECRET, webhook_url=f"{rx.base}/hook",  # type: ignore[arg-type]
                          webhook_secret=HOOK_SECRET, sms_url=f"{rx.base}/sms",  # type: ignore[arg-type]
                          smtp_url=f"smtp://127.0.0.1:{smtp_port}", retry_base_s=10,  # type: ignore[arg-type]
                          timeout_s=1.0, **{"group_wait_s": 0, **extra})


def dispatcher(records: Records, cfg: NotifySettings) -> tuple[Dispatcher, AlarmBook, Outbox]:
    book, outbox = AlarmBook(records), Outbox(records)
    http = httpx.Client(timeout=cfg.timeout_s)
    return Dispatcher(SITE, People(records), outbox, book, build_channels(cfg, http), cfg), book, outbox


def frost(severity: str = "critical") -> Signal:
    return Signal(SITE.id, "plot:p01", "spring_frost", severity, "alarm.spring_frost_text",
                  {"plot": "p01", "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, plot="p01")


def test_a_frost_reaches_the_farmer_then_escalates_until_acked(records: Records, http_receiver: HttpReceiver) -> None:
    start = at("2026-03-15T04:10")
    with SmtpReceiver() as smtp:
        d, book, outbox = dispatcher(records, settings_for(http_receiver, smtp.port))
        alarm, how = book.fire(frost(), start)
        d.on_changes([(alarm, how)], start)
        assert d.deliver(start) == {"sent": 2}  # the farmer: DingTalk and the inbox
        (ding,) = http_receiver.got
        body = ding.json()
        assert body["at"]["atMobiles"] == ["13800000001"]
        text = body["markdown"]["text"]
        assert "春季晚霜冻" in text and "-2.1°C" in text and "防霜" in text and "03-15 04:10" in text
        token = text.split("receipt?t=")[1].split(")")[0]
        nid = verify(token, LINK_SECRET, start / NS + 60)
        assert outbox.get(nid) is not None and outbox.get(nid).user == "wang"  # type: ignore[union-attr]

        assert d.escalate(start + 4 * MIN) == 0  # not yet
        assert d.escalate(start + 5 * MIN) == 2  # the adviser: e-mail and webhook
        d.deliver(start + 5 * MIN)
        assert len(smtp.messages) == 1 and "春季晚霜冻" in str(smtp.messages[0]["Subject"])
        hook = http_receiver.got[-1].json()
        assert hook["recipient"] == "li" and hook["severity"] == "critical"
        assert d.escalate(start + 15 * MIN) == 1  # the command center, in English, by SMS
        d.deliver(start + 15 * MIN)
        sms = http_receiver.got[-1].json()
        assert sms["phone"] == "13800000003" and sms["text"].startswith("[Critical] Spring frost")
        assert d.escalate(start + 25 * MIN) == 1  # a reminder to the stage reached

        outbox.read(nid, start + 26 * MIN)  # the farmer opens his link ...
        book.ack(alarm.id, "wang", start + 27 * MIN)  # ... and acknowledges
        assert d.escalate(start + 60 * MIN) == 0  # an ack anywhere stops the chain
        assert d.deliver(start + 60 * MIN) == {"cancelled": 1}  # the reminder still queued is not sent
        receipts = {(n.user, n.channel, n.kind): (n.status, n.read_ns is not None) for n in outbox.for_alarm(alarm.id)}
        assert receipts[("wang", "dingtalk", "alarm")] == ("sent", True)
        assert receipts[("li", "email", "alarm")] == ("sent", False)
        assert http_receiver.refused == []


def test_quiet_hours_hold_a_warning_but_not_a_critical(records: Records, http_receiver: HttpReceiver) -> None:
    People(records).upsert(User("wang", "王建国", "farmer", "zh", "13800000001", None, ("dingtalk",),
                                quiet_from="22:00", quiet_to="06:30"))
    night = at("2026-03-15T23:10")
    d, book, outbox = dispatcher(records, settings_for(http_receiver, 1))
    warn, how = book.fire(frost("warning"), night)
    d.on_changes([(warn, how)], night)
    assert d.deliver(night) == {}
    (n,) = outbox.for_alarm(warn.id)
    assert n.next_try_ns == at("2026-03-16T06:30")
    crit, how = book.fire(frost("critical"), night + MIN)  # worse: a frost now
    d.on_changes([(crit, how)], night + MIN)
    assert d.deliver(night + MIN) == {"sent": 1}


def test_a_receiver_failing_twice_gets_it_the_third_time(records: Records, http_receiver: HttpReceiver) -> None:
    http_receiver.fail_first = 2
    t0 = at("2026-03-15T04:10")
    d, book, outbox = dispatcher(records, settings_for(http_receiver, 1))
    alarm, how = book.fire(frost(), t0)
    d.on_changes([(alarm, how)], t0)
    assert d.deliver(t0) == {"retry": 1, "sent": 1}  # DingTalk failed, the inbox is local
    assert d.deliver(t0 + 9 * NS) == {}  # backoff: not before 10 s
    assert d.deliver(t0 + 10 * NS) == {"retry": 1}
    assert d.deliver(t0 + 29 * NS) == {}  # then 20 s
    assert d.deliver(t0 + 30 * NS) == {"sent": 1}
    ding = next(n for n in outbox.for_alarm(alarm.id) if n.channel == "dingtalk")
    assert (ding.status, ding.attempts, ding.last_error) == ("sent", 3, None)


def test_a_receiver_that_never_answers_fails_alone(records: Records, http_receiver: HttpReceiver) -> None:
    http_receiver.hang_s = 3.0
    t0 = at("2026-03-15T04:10")
    d, book, outbox = dispatcher(records, settings_for(http_receiver, 1, retries=1))
    alarm, how = book.fire(frost(), t0)
    d.on_changes([(alarm, how)], t0)
    assert d.deliver(t0) == {"retry": 1, "sent": 1}
    assert d.deliver(t0 + 10 * NS) == {"failed": 1}
    ding = next(n for n in outbox.for_alarm(alarm.id) if n.channel == "dingtalk")
    assert ding.status == "failed" and ding.attempts == 2 and "timed out" in (ding.last_error or "").lower()


def test_device_alarms_start_at_the_adviser_and_info_is_not_sent(records: Records,
                                                                 http_receiver: HttpReceiver) -> None:
    t0 = at("2026-03-15T10:00")
    d, book, outbox = dispatcher(records, settings_for(http_receiver, 1))
    d.escalation["info"] = Escalation(notify=False)
    offline, how = book.fire(Signal(SITE.id, "device:ws-p01", "device_offline", "warning", "alarm.device_offline_text",
                                    {"device": "ws-p01", "minutes": 5, "plot": "p01"}, "p01", "ws-p01"), t0)
    d.on_changes([(offline, how)], t0)
    assert {n.user for n in outbox.for_alarm(offline.id)} == {"li"}
    info, how = book.fire(Signal(SITE.id, "plot:p01", "spike", "info", "alarm.spike_text", {}, "p01"), t0)
    d.on_changes([(info, how)], t0)
    assert outbox.for_alarm(info.id) == []


@pytest.mark.parametrize("change", ["tampered", "expired"])
def test_links_cannot_be_forged_or_reused_after_expiry(change: str) -> None:
    from orchard.links import sign

    token = sign(42, int(time.time()) + (3600 if change == "tampered" else -1), LINK_SECRET)
    if change == "tampered":
        _, mac = token.split(".")
        token = sign(43, int(time.time()) + 3600, "wrong").split(".")[0] + "." + mac
    with pytest.raises(LinkError, match=change):
        verify(token, LINK_SECRET, time.time())
    assert verify(sign(42, int(time.time()) + 60, LINK_SECRET), LINK_SECRET, time.time()) == 42


@pytest.mark.integration
def test_alarm_changes_reach_sirens_over_mqtt(records: Records, mosquitto: Mosquitto) -> None:
    prefix = unique("o")
    got: list[MQTTMessage] = []
    sub = make_client(mosquitto.url, unique("siren-"))
    subscribed = threading.Event()
    sub.on_connect = lambda c, *_: c.subscribe(f"{prefix}/{SITE.id}/alerts/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: got.append(m)
    connect_to(sub, mosquitto.url)
    sub.loop_start()
    assert subscribed.wait(10), "no SUBACK"  # else the raise could go by before the siren listens
    pub = make_client(mosquitto.url, unique("alerts-"))
    connect_to(pub, mosquitto.url)
    pub.loop_start()
    book = AlarmBook(records)
    d = Dispatcher(SITE, People(records), Outbox(records), book, {}, NotifySettings(),
                   alerts=AlertPublisher(pub, prefix, SITE.id))
    t0 = at("2026-03-15T04:10")
    alarm, how = book.fire(frost(), t0)
    d.on_changes([(alarm, how)], t0)
    cleared = book.clear("plot:p01", "spring_frost", t0 + 90 * MIN)
    assert cleared is not None
    d.on_changes([(cleared, "cleared")], t0 + 90 * MIN)
    deadline = time.monotonic() + 10
    while len(got) < 2:
        assert time.monotonic() < deadline, "alerts not received"
        time.sleep(0.05)
    first, second = (orjson.loads(m.payload) for m in got[:2])
    assert got[0].topic == f"{prefix}/{SITE.id}/alerts/p01"
    assert (first["change"], first["active"], second["change"], second["active"]) == ("raised", True, "cleared",
                                                                                     False)
    sub.loop_stop()
    pub.loop_stop()


def test_daily_digest_goes_out_on_quiet_days_too_and_only_once(records: Records, http_receiver: HttpReceiver,
                                                               tmp_path: Path) -> None:
    from analytics.notify.digest import Digest
    from orchard.records.workorders import WorkOrders

    cfg = settings_for(http_receiver, 1)
    book, people = AlarmBook(records), People(records)
    digest = Digest(SITE, records, people, book, WorkOrders(records, tmp_path / "photos"),
                    build_channels(cfg, httpx.Client(timeout=2)), "07:30")
    assert digest.send(at("2026-03-15T07:29")) == {}  # not yet
    # The adviser's webhook and the center's SMS; the adviser's e-mail fails (no SMTP server here) and says so.
    assert digest.send(at("2026-03-15T07:31")) == {"sent": 2, "failed": 1}
    quiet = next(r.json() for r in http_receiver.got if r.path == "/hook")
    assert quiet["recipient"] == "li" and quiet["alarm_id"] is None and "一切正常" in quiet["text"]
    assert digest.send(at("2026-03-15T09:00")) == {}  # once a day (the record survives a restart)
    book.fire(frost(), at("2026-03-15T23:00"))
    assert digest.send(at("2026-03-16T07:30"))["sent"] == 2
    busy = next(r.json()["text"] for r in reversed(http_receiver.got) if r.path == "/hook")
    assert "新预警 1 条" in busy and "春季晚霜冻" in busy and "一切正常" not in busy


@pytest.mark.parametrize(("key", "refused"), [("wecom-key", False), ("stolen", True)])
def test_wecom_robot(records: Records, http_receiver: HttpReceiver, key: str, refused: bool) -> None:
    People(records).upsert(User("wang", "王建国", "farmer", channels=("wecom",)))
    cfg = settings_for(http_receiver, 1, wecom_url=f"{http_receiver.base}/cgi-bin/webhook/send?key={key}",
                       retries=0)
    d, book, outbox = dispatcher(records, cfg)
    t0 = at("2026-03-15T04:10")
    alarm, how = book.fire(frost(), t0)
    d.on_changes([(alarm, how)], t0)
    assert d.deliver(t0) == ({"failed": 1} if refused else {"sent": 1})
    if refused:  # the robot's own refusal is what the receipt matrix shows
        assert "invalid webhook url" in (outbox.for_alarm(alarm.id)[0].last_error or "")
    else:
        content = http_receiver.got[-1].json()["markdown"]["content"]
        assert "春季晚霜冻" in content and "王建国" in content


def test_peoples_words_in_a_robot_message_cannot_make_an_image_or_a_link() -> None:
    """A work order's title (a farmer's 随手拍 text) quoted by its overdue alarm, in DingTalk's markdown."""
    from analytics.notify.compose import compose
    from orchard.models import Alarm

    title = "![看](http://127.0.0.1:9/p.png) [点我](http://127.0.0.1:9/) <img src=x>"
    alarm = Alarm(7, SITE.id, "work_order:3", "work_order_overdue", "warning", "p01", None, 0, 0, None, None, None,
                  None, "alarm.work_order_overdue_text",
                  {"id": 3, "title": title, "state": "assigned", "assignee": "li", "overdue_h": 2.0})
    msg = compose(alarm, "alarm", "zh", SITE, "https://orchard.example.cn/receipt?t=abc")
    body = msg.markdown.rsplit("\n", 1)[0]  # all but our own link line
    assert "看" in body and "点我" in body  # the words are there ...
    assert not any(x in body for x in ("![", "](", "<img"))  # ... as text
    assert msg.markdown.endswith("(https://orchard.example.cn/receipt?t=abc)")


def test_every_channel_a_person_can_choose_has_its_module() -> None:
    """A channel is one module in analytics/notify/channels/: found without a list, and none of the names people
    choose from (orchard's ChannelName) without one."""
    from analytics.notify.channels import factories
    from orchard.records.people import ChannelName

    assert set(factories()) == set(ChannelName)
