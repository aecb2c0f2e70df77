"""Notices out (orchard/records/notices.py has what they are): the analytics service queues and sends them through
the same channels as alarms, each recipient with their personal signed link that records the read.

- Queued when the book says a message is wanted (a new notice, a reminder by click or by schedule): one delivery
  per configured channel of the person (the in-app inbox when none), held through their quiet hours unless the
  notice is urgent or carries an orange or red warning.
- Sent per person on e-mail, SMS, webhook; one post per notice and kind on a group robot (DingTalk, WeCom) that
  @-mentions everyone due, each with their own link, inside the robot's per-minute budget, which it shares with
  the alarm dispatcher (the same RobotGate).
- Retried with doubling backoff like alarm messages; every attempt recorded for the sender's matrix.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import tzinfo
from functools import partial

from analytics.notify.channels import Channel, DeliveryError, Refused, Robot, Throttled
from analytics.notify.compose import Message
from analytics.notify.robots import Item, Mention, single
from orchard import i18n
from orchard.links import sign_notice
from orchard.logs import event
from orchard.records.notices import LEVEL_ICONS, Delivery, Level, Notice, NoticeBook, Urgency
from orchard.records.people import People
from orchard.settings import NotifySettings

log = logging.getLogger("orchard.notices")
NS = 1_000_000_000
DELIVER_BATCH = 200  # deliveries read and sent at a time
# How a notice sorts among alarm posts on a robot (robots.py orders by severity) and whether it may wake people.
LEVEL_SEVERITY = {Level.RED: "critical", Level.ORANGE: "major", Level.YELLOW: "warning", Level.BLUE: "info"}


def notice_link(notice_id: int, user: str, cfg: NotifySettings, now_s: float | None = None) -> str | None:
    if cfg.link_secret is None:
        return None
    expires = int((now_s if now_s is not None else time.time()) + cfg.link_ttl_h * 3600)
    token = sign_notice(notice_id, user, expires, cfg.link_secret.get_secret_value())
    return f"{cfg.public_url.rstrip('/')}/receipt?n={token}"


def severity_of(notice: Notice) -> str:
    if notice.level is not None:
        return LEVEL_SEVERITY[notice.level]
    return "critical" if notice.urgency == Urgency.URGENT else "warning"


def wakes(notice: Notice) -> bool:
    """Goes out through quiet hours: urgent, or an orange or red warning."""
    return notice.urgency == Urgency.URGENT or notice.level in (Level.ORANGE, Level.RED)


def compose_notice(notice: Notice, author: str, kind: str, lang: str, link: str | None) -> Message:
    """One notice for one reader (or a robot's group): who sent it, the warning level, the text, the plots it
    concerns, whether 收到 is asked, the link."""
    prefix = i18n.t("notice.reminder_prefix", lang) if kind == "reminder" else ""
    level = f"{LEVEL_ICONS[notice.level]} {i18n.t(f'alarm.level_{notice.level}', lang)} · " if notice.level else ""
    urgent = i18n.t("notice.urgent_prefix", lang) if notice.urgency == Urgency.URGENT else ""
    subject = f"{prefix}{urgent}{i18n.t('notice.subject', lang)} · {level}{notice.title}"
    lines = [notice.body] if notice.body else []
    if notice.plots:
        lines.append(i18n.t("notice.plots", lang, plots="、".join(notice.plots)))
    lines.append(i18n.t("notice.from", lang, author=author))
    if notice.attachment_name:
        lines.append(i18n.t("notice.attachment", lang, name=notice.attachment_name))
    ask = i18n.t("notice.open_confirm" if notice.confirm else "notice.open", lang)
    md = [f"### {i18n.neutral(subject)}", *(f"- {i18n.neutral(x)}" for x in lines)]
    if link:
        md.append(f"[{ask}]({link})")
    plain = "\n".join([subject, *lines, *([f"{ask}: {link}"] if link else [])])
    return Message(None, severity_of(notice), subject, "\n".join(md), plain, link)


class NoticeDesk:
    def __init__(self, book: NoticeBook, people: People, channels: Mapping[str, Channel | Robot],
                 cfg: NotifySettings, tz: tzinfo, wall_clock: bool = True) -> None:
        self.book, self.people, self.channels, self.cfg, self.tz = book, people, dict(channels), cfg, tz
        self.wall_clock = wall_clock  # the links' expiry from the real clock (a test's injected clock may be years off)
        # Sent, but the records DB went away before it could say so: recorded first at the next delivery, and
        # never sent again meanwhile (delivery id -> when it was sent).
        self.unrecorded: dict[int, int] = {}

    def cycle(self, now_ns: int, budget_s: float = 20.0) -> dict[str, int]:
        """Scheduled reminders, then queue what is wanted, then send what is due: batch after batch until nothing
        is left or `budget_s` has gone (a warning for a whole county is thousands of people, and must not wait
        for a batch a minute)."""
        reminded = self.book.scheduled(now_ns)
        if reminded:
            event(log, "notice_reminders", notices=len(reminded), people=sum(len(w) for w in reminded.values()))
        started = time.monotonic()
        queued = 0
        while (n := self.queue(now_ns)) and time.monotonic() - started < budget_s:
            queued += n
        queued += n
        counts: dict[str, int] = defaultdict(int)
        while time.monotonic() - started < budget_s:
            done = self.deliver(now_ns)
            for k, v in done.items():
                counts[k] += v
            if sum(v for k, v in done.items() if k != "waiting") < DELIVER_BATCH:
                break
        return {"queued": queued, **counts}

    def queue(self, now_ns: int) -> int:
        rows: dict[tuple[int, str], list[tuple[str, int]]] = {}
        kinds: dict[tuple[int, str], str] = {}
        wanted = self.book.wanted()
        people = self.people.named(r.user for _, r in wanted)
        for notice, r in wanted:
            user = people.get(r.user)
            key = (notice.id, r.user)
            kinds[key] = r.wanted or "notice"
            if user is None or not user.active:
                rows[key] = []  # nobody to reach any more: the row says it was not read
                continue
            hold = 0 if wakes(notice) else (user.quiet_end(now_ns, self.tz) or 0)
            rows[key] = [(c, hold if c != "inbox" else 0)
                         for c in [c for c in user.channels if c in self.channels] or ["inbox"]]
        return self.book.queue(rows, kinds, now_ns) if rows else 0

    def _retry_at(self, attempts: int, now_ns: int) -> int | None:
        if attempts >= self.cfg.retries:
            return None
        return now_ns + int(min(600.0, self.cfg.retry_base_s * 2**attempts) * NS)

    def deliver(self, now_ns: int) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for when in sorted(set(self.unrecorded.values())):
            ids = [i for i, t in self.unrecorded.items() if t == when]
            self.book.sent(ids, when)
            for i in ids:
                del self.unrecorded[i]
        due = self.book.due(now_ns, limit=DELIVER_BATCH)
        notices = {i: self.book.get(i) for i in {d.notice_id for d in due}}
        users = self.people.named(d.user for d in due)
        writers = self.people.named(n.author for n in notices.values() if n is not None)
        authors = {a: (writers[a].display if a in writers else a)
                   for a in {n.author for n in notices.values() if n is not None}}
        robots: dict[tuple[str, int, str], list[Delivery]] = defaultdict(list)
        for d in due:
            notice, user, ch = notices.get(d.notice_id), users.get(d.user), self.channels.get(d.channel)
            if notice is None or user is None or ch is None:
                self.book.failed([d.id], "recipient or channel gone", None)
                counts["failed"] += 1
                continue
            if isinstance(ch, Robot):
                robots[(d.channel, d.notice_id, d.kind)].append(d)
                continue
            link = notice_link(notice.id, user.name, self.cfg, None if self.wall_clock else now_ns / NS)
            msg = compose_notice(notice, authors[notice.author], d.kind, user.lang, link)
            self._attempt([d], partial(ch.send, user, msg), now_ns, counts)
        for (name, nid, kind), ds in robots.items():
            robot = self.channels[name]
            assert isinstance(robot, Robot)
            notice = notices[nid]
            assert notice is not None
            if robot.gate.available(now_ns) <= 0:
                self.book.postpone([d.id for d in ds], robot.gate.next_free(now_ns))
                counts["waiting"] += len(ds)
                continue
            mentions = tuple(Mention(u, notice_link(nid, u.name, self.cfg, None if self.wall_clock else now_ns / NS))
                             for d in ds if (u := users.get(d.user)) is not None)
            lang = i18n.DEFAULT_LANG
            msg = compose_notice(notice, authors[notice.author], kind, lang, None)
            post = single(Item((nid, f"notice-{kind}", 0), msg.severity, notice.created_ns, msg, mentions),
                          robot.at_phone)
            robot.gate.record(now_ns)
            self._attempt(ds, partial(robot.post, post), now_ns, counts, robot=robot)
        return dict(counts)

    def _attempt(self, ds: list[Delivery], send: Callable[[], None], now_ns: int, counts: dict[str, int],
                 robot: Robot | None = None) -> None:
        ids = [d.id for d in ds]
        try:
            send()
        except Throttled as e:
            until = robot.gate.throttled(now_ns) if robot is not None else now_ns + int(self.cfg.retry_base_s * NS)
            self.book.postpone(ids, until)
            counts["throttled"] += len(ids)
            event(log, "notice_throttled", logging.WARNING, channel=ds[0].channel, error=str(e)[:200])
        except Refused as e:
            self.book.failed(ids, str(e), None)
            counts["failed"] += len(ids)
            event(log, "notice_refused", logging.ERROR, channel=ds[0].channel, error=str(e)[:200])
        except DeliveryError as e:
            retry = self._retry_at(min(d.attempts for d in ds), now_ns)
            self.book.failed(ids, str(e), retry)
            counts["retry" if retry is not None else "failed"] += len(ids)
            event(log, "notice_failed", logging.WARNING, channel=ds[0].channel, notice=ds[0].notice_id,
                  attempt=ds[0].attempts + 1, error=str(e)[:200], retry=retry is not None)
        else:
            try:
                self.book.sent(ids, now_ns)
            except Exception:
                self.unrecorded.update({i: now_ns for i in ids})
                raise
            counts["sent"] += len(ids)
            event(log, "notice_sent", channel=ds[0].channel, notice=ds[0].notice_id, people=len(ids))

