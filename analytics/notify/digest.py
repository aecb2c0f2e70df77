"""The daily digest ("zero report"): every morning, to advisers and the command center, what the last 24 hours
brought, and that nothing did when nothing did. A silent morning must mean "all quiet", never "system down".
A group robot gets it once, @-mentioning everyone it is for."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, time

from sqlalchemy import insert, select

from analytics.notify.channels import Channel, DeliveryError, Robot, Throttled
from analytics.notify.compose import Message
from analytics.notify.robots import Item, Mention, group_lang, pack
from orchard import i18n
from orchard.logs import event
from orchard.models import DEVICE_TYPES
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.people import People, User
from orchard.records.schema import digests as DG
from orchard.records.workorders import OPEN_STATES, WorkOrders
from orchard.site import Site

log = logging.getLogger("orchard.notify")
NS = 1_000_000_000


class Digest:
    def __init__(self, site: Site, records: Records, people: People, book: AlarmBook, orders: WorkOrders,
                 channels: Mapping[str, Channel | Robot], at: str) -> None:
        self.site, self.engine, self.people, self.book, self.orders = site, records.engine, people, book, orders
        self.channels, self.at = dict(channels), time.fromisoformat(at)
        # (day, user, channel) -> its row: sent while the records DB was away, recorded before anything else
        self.unrecorded: dict[tuple[str, str, str], dict[str, object]] = {}

    def recipients(self) -> list[User]:
        return [u for u in self.people.here() if u.active and u.role in ("adviser", "center")]

    def message(self, lang: str, now_ns: int) -> Message:
        since = now_ns - 86400 * NS
        new = [a for a in self.book.recent(1, now_ns) if a.started_ns >= since]
        active = self.book.active()
        crop = [a for a in new if a.type not in DEVICE_TYPES]
        open_orders = self.orders.find(states=OPEN_STATES)
        overdue = [w for w in open_orders if w.overdue(now_ns)]
        offline = [a for a in active if a.type == "device_offline"]
        day = datetime.fromtimestamp(now_ns / NS, self.site.tz).strftime("%Y-%m-%d")
        t = lambda key, **kw: i18n.t(f"digest.{key}", lang, **kw)  # noqa: E731
        subject = t("subject", site=self.site.name(lang), day=day)
        lines = [
            t("alarms", new=len(new), crop=len(crop), active=len(active),
              unacked=sum(1 for a in active if not a.acked)),
            t("orders", open=len(open_orders), overdue=len(overdue)),
            t("devices", offline=len(offline)),
        ]
        if not new and not active and not overdue:
            lines.insert(0, t("quiet"))
        for a in sorted(active, key=lambda a: a.severity != "critical")[:5]:
            where = self.site.plot_label(a.plot, lang) if a.plot else a.source
            words = alarm_text(a, lang, self.site)
            lines.append(f"{words.severity} · {words.title} · {where}")
        markdown = "\n".join([f"### {subject}", *(f"- {x}" for x in lines)])
        return Message(None, "info", subject, markdown, "\n".join([subject, *lines]), None)

    def due(self, now_ns: int) -> str | None:
        """Today's local date when the digest hour has come; None before it."""
        local = datetime.fromtimestamp(now_ns / NS, self.site.tz)
        return local.strftime("%Y-%m-%d") if local.time() >= self.at else None

    def send(self, now_ns: int) -> dict[str, int]:
        """Send today's digest to whoever has not had it; returns counts by outcome."""
        day = self.due(now_ns)
        if day is None:
            return {}
        for key, row in list(self.unrecorded.items()):  # sent while the records DB was away: say so first
            with self.engine.begin() as conn:
                conn.execute(insert(DG).values(**row))
            del self.unrecorded[key]
        with self.engine.connect() as conn:
            done = {(r.user, r.channel) for r in conn.execute(select(DG).where(DG.c.day == day))}
        outcomes: dict[str, int] = {}
        messages: dict[str, Message] = {}  # per language; composed only when someone still needs it
        by_robot: dict[str, list[User]] = {}
        for u in self.recipients():
            for name in [c for c in u.channels if c in self.channels] or ["inbox"]:
                if (u.name, name) in done:
                    continue
                channel = self.channels[name]
                if isinstance(channel, Robot):
                    by_robot.setdefault(name, []).append(u)
                    continue
                if u.lang not in messages:
                    messages[u.lang] = self.message(u.lang, now_ns)
                status, error = "sent", None
                try:
                    channel.send(u, messages[u.lang])
                except DeliveryError as e:  # no retries: tomorrow brings the next one, the failure is recorded
                    status, error = "failed", str(e)[:500]
                self._record(day, [u], name, status, error, now_ns)
                outcomes[status] = outcomes.get(status, 0) + 1
        for name, users in by_robot.items():
            posted = self._post(name, users, day, now_ns)
            if posted is not None:
                outcomes[posted] = outcomes.get(posted, 0) + len(users)
        if outcomes:
            event(log, "digest", day=day, **outcomes)
        return outcomes

    def _post(self, name: str, users: list[User], day: str, now_ns: int) -> str | None:
        """One post for everyone this robot carries the digest to; None when its minute is full (next run)."""
        robot = self.channels[name]
        assert isinstance(robot, Robot)
        mentions = tuple(Mention(u, None) for u in users)
        item = Item((0, "digest", 0), "info", now_ns, self.message(group_lang(mentions), now_ns), mentions)
        posts, _ = pack([item], min(1, robot.gate.available(now_ns)), robot.max_bytes, robot.at_phone)
        if not posts:
            return None
        status, error = "sent", None
        try:
            robot.post(posts[0])
        except Throttled:
            robot.gate.throttled(now_ns)
            return None
        except DeliveryError as e:
            status, error = "failed", str(e)[:500]
        robot.gate.record(now_ns)
        self._record(day, users, name, status, error, now_ns)
        return status

    def _record(self, day: str, users: list[User], channel: str, status: str, error: str | None,
                now_ns: int) -> None:
        rows: list[dict[str, object]] = [
            {"day": day, "user": u.name, "channel": channel, "status": status, "sent_ns": now_ns, "error": error}
            for u in users]
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(DG), rows)
        except Exception:
            self.unrecorded.update({(day, str(r["user"]), channel): r for r in rows})
            raise
