"""Who hears about an alarm, when, and through what; and getting it there.

- Routing: crop alarms go first to the farmers who own the plot, then its advisers, then the command center;
  device alarms start at the advisers. A stage with nobody in it is skipped.
- Escalation per severity (site.toml [escalation.<severity>]): the next stage after N minutes without an ack,
  reminders every M minutes to the stage reached; an ack anywhere stops both.
- Quiet hours per user hold messages until the hours end, except critical ones (a frost at 4 am must wake
  people). The in-app inbox is silent and never waits.
- Delivery: each (recipient, channel) separately, several at a time (a receiver that hangs delays only its own
  messages), retried with doubling backoff; every attempt is recorded for the receipt matrix.
- Grouping (orchard/grouping.py): one rule's alarms raised together are one message per person and step. A
  message waits `group_wait_s` (30 s) for the rest of its group; when it goes, it takes the group's later alarms
  with it; a group escalates on the clock of its first alarm. The signed link of a group message reads (and
  acknowledges) every alarm in it.
- Group robots (DingTalk, WeCom) get one post per group of alarms and escalation step that @-mentions everyone
  it is for, critical first, split by plot where one post would be too large, paced under the robot's
  per-minute limit; more groups than the minute allows are combined into summary posts (robots.py).
- A refusal that a retry cannot fix (bad key or signature) is not retried: it raises a `channel_failed` alarm
  for the command center, through its other channels; the next post that gets through clears it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analytics.notify.channels import AlertPublisher, Channel, DeliveryError, Refused, Robot, Throttled
from analytics.notify.compose import compose_group, link_for
from analytics.notify.robots import Item, Mention, group_lang, pack, single
from orchard import i18n
from orchard.grouping import group_alarms
from orchard.logs import event
from orchard.models import DEVICE_TYPES, Alarm, Severity, Signal
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.outbox import Notification, Outbox
from orchard.records.people import People, Role, User
from orchard.records.snapshots import SnapshotRef
from orchard.redact import redact
from orchard.settings import NotifySettings
from orchard.site import Site

log = logging.getLogger("orchard.notify")
NS = 1_000_000_000
CROP_CHAIN: tuple[Role, ...] = (Role.FARMER, Role.ADVISER, Role.CENTER)
DEVICE_CHAIN: tuple[Role, ...] = (Role.ADVISER, Role.CENTER)
CENTER_CHAIN: tuple[Role, ...] = (Role.CENTER,)
CENTER_TYPES = frozenset({"work_order_overdue", "channel_failed", "ingest_behind"})
Health = tuple[str, str]  # a channel's state after a delivery round: ("ok" | "refused" | "throttled", error)


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: bool = Field(True, description="Send messages at all for this severity (else: dashboard only).")
    next_after_min: tuple[float, ...] = Field((), description="Minutes after the start, without an ack, at which "
                                              "the next stages are reached (adviser, then command center).")
    repeat_min: float | None = Field(None, description="Remind the stage reached this often until acked.")


DEFAULT_ESCALATION = {
    "critical": Escalation(next_after_min=(5, 15), repeat_min=10),
    "major": Escalation(next_after_min=(15, 60), repeat_min=30),
    "warning": Escalation(next_after_min=(120,), repeat_min=None),
    "info": Escalation(notify=False),
}


def escalation_for(raw: Mapping[str, Mapping[str, object]]) -> dict[str, Escalation]:
    out = dict(DEFAULT_ESCALATION)
    for severity, values in raw.items():
        if severity not in out:
            raise ValueError(f"[escalation.{severity}]: severity must be one of {', '.join(out)}")
        try:
            out[severity] = Escalation(**{**out[severity].model_dump(), **values})
        except ValidationError as e:
            raise ValueError(f"[escalation.{severity}]: {e.errors()[0]['msg']}") from None
    return out


class Dispatcher:
    def __init__(self, site: Site, people: People, outbox: Outbox, book: AlarmBook,
                 channels: Mapping[str, Channel | Robot],
                 cfg: NotifySettings, escalation: Mapping[str, Escalation] | None = None,
                 alerts: AlertPublisher | None = None, workers: int = 8) -> None:
        self.site, self.people, self.outbox, self.book = site, people, outbox, book
        self.channels, self.cfg, self.alerts = dict(channels), cfg, alerts
        self.escalation = dict(escalation or DEFAULT_ESCALATION)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="notify")
        self.lock = threading.Lock()  # the full and the quick cycle both deliver: one at a time, none twice
        # Sent, but the records DB went away before it could say so: recorded first at the next delivery, and
        # never sent again meanwhile (notification id -> when it was sent).
        self.unrecorded: dict[int, int] = {}
        self.failing: set[str] | None = None  # sources of active channel_failed alarms, read at first need

    # -- routing ----------------------------------------------------------------------------------------------
    def chain(self, alarm: Alarm) -> list[list[User]]:
        """The stages that have someone in them, in order."""
        roles = (CENTER_CHAIN if alarm.type in CENTER_TYPES else DEVICE_CHAIN if alarm.type in DEVICE_TYPES
                 else CROP_CHAIN)
        stages = [self.people.for_plot(alarm.plot, role) for role in roles]
        return [s for s in stages if s]

    def _queue(self, alarm: Alarm, users: Iterable[User], stage: int, kind: str, now_ns: int) -> int:
        rows: list[tuple[str, str, int | None]] = []
        broken = alarm.details.get("channel_id") if alarm.type == "channel_failed" else None
        for u in users:
            for c in [c for c in u.channels if c in self.channels and c != broken] or ["inbox"]:
                wait_until = None
                if c != "inbox":  # a moment for the same rule's alarms on other plots to join it (grouping)
                    wait_until = now_ns + int(self.cfg.group_wait_s * NS) if self.cfg.group_wait_s else None
                if c != "inbox" and alarm.severity != "critical" and kind != "cleared":
                    quiet = self._quiet_end(u, now_ns)
                    wait_until = max(quiet, wait_until or 0) if quiet is not None else wait_until
                rows.append((u.name, c, wait_until))
        return len(self.outbox.queue(alarm.id, rows, stage, kind, now_ns)) if rows else 0

    def _quiet_end(self, u: User, now_ns: int) -> int | None:
        return u.quiet_end(now_ns, self.site.tz)

    # -- what the engine reports ------------------------------------------------------------------------------
    def on_changes(self, changes: Iterable[tuple[Alarm, str]], now_ns: int) -> None:
        for alarm, change in changes:
            if self.alerts is not None:
                self.alerts.publish(alarm, change)
            policy = self.escalation.get(alarm.severity, DEFAULT_ESCALATION["info"])
            if change in ("raised", "worse") and policy.notify:
                chain = self.chain(alarm)
                if chain:
                    self._queue(alarm, chain[0], 0, "alarm", now_ns)
            elif change == "cleared":
                told = {n.user for n in self.outbox.for_alarm(alarm.id) if n.kind != "cleared"}
                users = [u for u in (self.people.get(name) for name in sorted(told)) if u is not None]
                self._queue(alarm, users, 0, "cleared", now_ns)

    def escalate(self, now_ns: int) -> int:
        """Next stages and reminders for active alarms nobody acked; returns messages queued."""
        with self.lock:
            return self._escalate(now_ns)

    def _escalate(self, now_ns: int) -> int:
        open_alarms = [a for a in self.book.active() if not a.acked]
        reached = self.outbox.last_stage(a.id for a in open_alarms)
        # A group's alarms escalate together, on the clock of its first one: the next stage hears of the group
        # in one message, not of each plot as its own minutes run out.
        group_start = {a.id: g.started_ns for g in group_alarms(open_alarms) for a in g.alarms}
        queued = 0
        for a in open_alarms:
            policy = self.escalation.get(a.severity, DEFAULT_ESCALATION["info"])
            if not policy.notify or a.id not in reached:
                continue
            stage, last_ns = reached[a.id]
            chain = self.chain(a)
            age_min = (now_ns - group_start.get(a.id, a.started_ns)) / NS / 60
            due = sum(1 for m in policy.next_after_min if age_min >= m)
            if due > stage and stage + 1 < len(chain):
                target = min(due, len(chain) - 1)
                queued += self._queue(a, chain[target], target, "alarm", now_ns)
            elif policy.repeat_min and (now_ns - last_ns) / NS / 60 >= policy.repeat_min and stage < len(chain):
                queued += self._queue(a, chain[stage], stage, "reminder", now_ns)
        return queued

    # -- delivery ---------------------------------------------------------------------------------------------
    def deliver(self, now_ns: int | None = None, clock: Callable[[], int] = time.time_ns) -> dict[str, int]:
        """Send what is due, several at a time; returns counts by outcome."""
        now_ns = now_ns if now_ns is not None else clock()
        with self.lock:
            return self._deliver(now_ns)

    def _deliver(self, now_ns: int) -> dict[str, int]:
        for nid, sent_ns in list(self.unrecorded.items()):
            self.outbox.sent(nid, sent_ns)
            del self.unrecorded[nid]
        # What is due, and what is held only for its group to gather (due within the group wait): a message that
        # goes now takes its group's later alarms with it, so the group is one message, not one per plot.
        candidates = self.outbox.due(now_ns + int(self.cfg.group_wait_s * NS))
        alarms: dict[int, Alarm] = {}
        photos: dict[int, SnapshotRef | None] = {}
        for n in candidates:
            if n.alarm_id not in alarms:
                alarms[n.alarm_id] = self.book.get(n.alarm_id)
                photos[n.alarm_id] = next(iter(self.book.evidence(n.alarm_id)), None)
        by_robot: dict[str, list[Notification]] = {}
        personal = []
        for notes in self._together(candidates, alarms):
            if not any(n.next_try_ns <= now_ns for n in notes):
                continue  # the whole group is still gathering
            for n in notes:
                channel = self.channels.get(n.channel)
                if isinstance(channel, Robot):
                    by_robot.setdefault(n.channel, []).append(n)
            if not isinstance(self.channels.get(notes[0].channel), Robot):
                personal.append(notes)
        due = [n for notes in personal for n in notes] + [n for notes in by_robot.values() for n in notes]
        singles = [self.pool.submit(self._deliver_one, notes, [alarms[n.alarm_id] for n in notes],
                                    next((photos[n.alarm_id] for n in notes if photos[n.alarm_id]), None), now_ns)
                   for notes in personal]
        groups = [self.pool.submit(self._deliver_robot, name, notes, alarms, photos, now_ns)
                  for name, notes in by_robot.items()]  # one robot's posts in order; robots side by side
        outcomes: dict[str, int] = {}
        health: dict[str, Health] = {}
        for f in singles:
            counted, said = f.result()
            for k, v in counted.items():
                outcomes[k] = outcomes.get(k, 0) + v
            if said is not None:
                health[said[0]] = said[1]
        for g in groups:
            counts, (name, state) = g.result()
            for k, v in counts.items():
                outcomes[k] = outcomes.get(k, 0) + v
            if state is not None:
                health[name] = state
        if due:
            event(log, "delivered", **outcomes)
        for name, state in health.items():
            self._channel_alarm(name, state, now_ns)
        return outcomes

    @staticmethod
    def _together(notes: Iterable[Notification], alarms: Mapping[int, Alarm]) -> list[list[Notification]]:
        """What goes to one person through one channel as one message: their due notifications of the same kind
        and stage whose alarms are one group (orchard/grouping.py)."""
        by_person: dict[tuple[str, str, str, int], list[Notification]] = {}
        for n in notes:
            by_person.setdefault((n.user, n.channel, n.kind, n.stage), []).append(n)
        out: list[list[Notification]] = []
        for mine in by_person.values():
            group_of = {a.id: g.key for g in group_alarms(alarms[n.alarm_id] for n in mine) for a in g.alarms}
            batches: dict[str, list[Notification]] = {}
            for n in mine:
                batches.setdefault(group_of[n.alarm_id], []).append(n)
            out += batches.values()
        return out

    def _deliver_one(self, notes: list[Notification], alarms: list[Alarm], photo: SnapshotRef | None,
                     now_ns: int) -> tuple[dict[str, int], tuple[str, Health] | None]:
        """One message to one person through one channel, for one alarm or a group of them."""
        live = []
        for n, alarm in zip(notes, alarms, strict=True):
            if n.kind == "reminder" and alarm.acked:
                self.outbox.failed(n.id, "acknowledged before the reminder went out", None)
            else:
                live.append((n, alarm))
        counts = {"cancelled": len(notes) - len(live)} if len(live) < len(notes) else {}
        if not live:
            return counts, None
        first = live[0][0]
        ids = [n.id for n, _ in live]
        user = self.people.get(first.user)
        channel = self.channels.get(first.channel)
        if user is None or channel is None or isinstance(channel, Robot):
            self.outbox.failed(ids, f"no such {'user' if user is None else 'channel'}", None)
            return {**counts, "failed": len(ids)}, None
        msg = compose_group([a for _, a in live], first.kind, user.lang, self.site,
                            link_for(first.id, self.cfg, now_ns / NS), photo)
        try:
            channel.send(user, msg)
        except Refused as e:
            self.outbox.failed(ids, str(e), None)
            event(log, "delivery_refused", logging.ERROR, notification=first.id, channel=first.channel,
                  error=str(e)[:200])
            return {**counts, "failed": len(ids)}, (first.channel, ("refused", str(e)))
        except DeliveryError as e:
            retry = self._retry_at(min(n.attempts for n, _ in live), now_ns)
            self.outbox.failed(ids, str(e), retry)
            event(log, "delivery_failed", logging.WARNING, notification=first.id, channel=first.channel,
                  user=first.user, attempt=first.attempts + 1, error=str(e)[:200], retry=retry is not None)
            return {**counts, ("retry" if retry is not None else "failed"): len(ids)}, None
        try:
            self.outbox.sent(ids, now_ns)
        except Exception:
            self.unrecorded.update({i: now_ns for i in ids})
            raise
        return {**counts, "sent": len(ids)}, (first.channel, ("ok", ""))

    def _retry_at(self, attempts: int, now_ns: int) -> int | None:
        if attempts >= self.cfg.retries:
            return None
        return now_ns + int(min(600.0, self.cfg.retry_base_s * 2**attempts) * NS)

    def _deliver_robot(self, name: str, notes: list[Notification], alarms: Mapping[int, Alarm],
                       photos: Mapping[int, SnapshotRef | None],
                       now_ns: int) -> tuple[dict[str, int], tuple[str, Health | None]]:
        """A robot's due notifications as few posts as its minute allows, most severe first."""
        robot = self.channels[name]
        assert isinstance(robot, Robot)
        out: dict[str, int] = {}

        def count(outcome: str, n: int) -> None:
            if n:
                out[outcome] = out.get(outcome, 0) + n

        # One item per group of alarms (orchard/grouping.py) and escalation step: one post for a frost night
        # across twelve plots, each person @-mentioned once with their own link.
        group_of = {a.id: g.alarms[0].id for g in group_alarms(alarms[n.alarm_id] for n in notes) for a in g.alarms}
        members: dict[tuple[int, str, int], list[tuple[Notification, User]]] = {}
        for n in notes:
            user = self.people.get(n.user)
            if n.kind == "reminder" and alarms[n.alarm_id].acked:
                self.outbox.failed(n.id, "acknowledged before the reminder went out", None)
                count("cancelled", 1)
            elif user is None:
                self.outbox.failed(n.id, "no such user", None)
                count("failed", 1)
            else:
                members.setdefault((group_of[n.alarm_id], n.kind, n.stage), []).append((n, user))
        notes_of: dict[tuple[int, str, int], list[Notification]] = {}
        items = []
        for (first_id, kind, stage), group in members.items():
            grouped = sorted({n.alarm_id: alarms[n.alarm_id] for n, _ in group}.values(),
                             key=lambda a: (-a.severity.rank, a.started_ns, a.id))  # a split keeps the worst first
            parts = self._robot_parts(grouped, group, kind, robot.max_bytes, robot.at_phone, photos, now_ns)
            for part, item in parts:
                key = (first_id if len(parts) == 1 else part[0].id, kind, stage)
                items.append(replace(item, key=key))
                notes_of[key] = [n for n, _ in group if n.alarm_id in {a.id for a in part}]
        gate = robot.gate
        if not gate.seeded:  # once: what an earlier run posted this minute
            gate.seed(self.outbox.posts_since(name, now_ns - 60 * NS), now_ns)
        posts, waiting = pack(items, gate.available(now_ns), robot.max_bytes, robot.at_phone)
        state: Health | None = None
        for i, post in enumerate(posts):
            these = [n for item in post.items for n in notes_of[item.key]]
            later = [n for p in posts[i + 1:] for item in p.items for n in notes_of[item.key]]
            try:
                robot.post(post)
            except Throttled as e:  # someone else posted through it too, or the vendor changed its limit
                until = gate.throttled(now_ns)
                self.outbox.postpone([n.id for n in these + later], until, str(e))
                count("waiting", len(these) + len(later))
                event(log, "robot_throttled", logging.ERROR, channel=name, until_ns=until, error=str(e)[:200])
                state = ("throttled", str(e))
                break
            except Refused as e:  # a wrong key or signature: every post would fail the same way
                dead = these + later + [n for item in waiting for n in notes_of[item.key]]
                self.outbox.failed([n.id for n in dead], str(e), None)
                count("failed", len(dead))
                waiting = []
                event(log, "robot_refused", logging.ERROR, channel=name, notifications=len(dead), error=str(e)[:200])
                state = ("refused", str(e))
                break
            except DeliveryError as e:  # unreachable or busy: this post is retried, the rest wait with it
                gate.record(now_ns)  # it may have arrived after all
                retry = self._retry_at(min(n.attempts for n in these), now_ns)
                self.outbox.failed([n.id for n in these], str(e), retry)
                self.outbox.postpone([n.id for n in later], retry or now_ns + int(self.cfg.retry_base_s * NS))
                count("retry" if retry is not None else "failed", len(these))
                count("waiting", len(later))
                event(log, "delivery_failed", logging.WARNING, channel=name, notifications=len(these),
                      error=str(e)[:200], retry=retry is not None)
                break
            gate.record(now_ns)
            try:
                self.outbox.sent([n.id for n in these], now_ns)
            except Exception:
                self.unrecorded.update({n.id: now_ns for n in these})
                raise
            count("sent", len(these))
            state = ("ok", "")
        if waiting:  # the minute is full: the next free slot, most severe still first then
            held = [n.id for item in waiting for n in notes_of[item.key]]
            self.outbox.postpone(held, gate.next_free(now_ns))
            count("waiting", len(held))
        return out, (name, state)

    def _robot_parts(self, grouped: list[Alarm], group: list[tuple[Notification, User]], kind: str,
                     max_bytes: int, at_phone: bool, photos: Mapping[int, SnapshotRef | None],
                     now_ns: int) -> list[tuple[list[Alarm], Item]]:
        """A group's post for a group chat (its alarms, and the item without its key yet), split in halves (by
        plot) until each half fits in one post."""
        ids = {a.id for a in grouped}
        mine = [(n, u) for n, u in group if n.alarm_id in ids]
        first_note: dict[str, tuple[Notification, User]] = {}
        for n, u in mine:
            first_note.setdefault(u.name, (n, u))
        mentions = tuple(Mention(u, link_for(n.id, self.cfg, now_ns / NS)) for n, u in first_note.values())
        lang = group_lang(mentions)
        worst = max(grouped, key=lambda a: a.severity.rank)
        words = alarm_text(worst, lang, self.site)
        photo = next((photos[a.id] for a in grouped if photos[a.id] is not None), None)
        message = compose_group(grouped, kind, lang, self.site, None, photo, compact=True)
        names = [self.site.plot_label(a.plot, lang) if a.plot else (a.device or a.source) for a in grouped]
        detail = i18n.neutral(words.text if len(grouped) == 1 else f"{words.text} · {'、'.join(names)}")
        item = Item((0, kind, 0), worst.severity, min(a.started_ns for a in grouped), message, mentions,
                    detail if kind != "cleared" else "",
                    i18n.neutral(f"{words.title}：{words.advice}") if kind != "cleared" else "")
        if len(grouped) == 1 or len(single(item, at_phone).markdown.encode()) <= max_bytes:
            return [(grouped, item)]
        half = len(grouped) // 2
        return [*self._robot_parts(grouped[:half], mine, kind, max_bytes, at_phone, photos, now_ns),
                *self._robot_parts(grouped[half:], mine, kind, max_bytes, at_phone, photos, now_ns)]

    def _channel_alarm(self, name: str, health: Health, now_ns: int) -> None:
        """A channel that refuses everything is an alarm for the command center; the next delivery clears it."""
        state, error = health
        source = f"channel:{name}"
        if self.failing is None:  # what an earlier run left active (it clears when the channel works again)
            self.failing = {a.source for a in self.book.active() if a.type == "channel_failed"}
        if state == "ok":
            if source in self.failing:
                cleared = self.book.clear(source, "channel_failed", now_ns)
                self.failing.discard(source)
                if cleared is not None:
                    self.on_changes([(cleared, "cleared")], now_ns)
            return
        signal = Signal(self.site.id, source, "channel_failed", Severity.MAJOR, f"alarm.channel_{state}_text",
                        {"channel_key": f"notify.channel_{name}", "channel_id": name, "error": redact(error)[:200]})
        alarm, how = self.book.fire(signal, now_ns)
        self.failing.add(source)
        if how == "raised":
            self.on_changes([(alarm, how)], now_ns)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
