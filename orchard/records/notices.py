"""Notices (通知): a message a person writes (county, town or village staff) for the towns and villages under them,
with who has read it and who has not.

- A notice is for an area (towns and villages, each within the writer's tier: county staff any, town staff their
  town's villages, village staff their village) and, inside it, for roles (farmers, advisers, village staff, town
  staff) and named people. Who it reached is fixed when it is sent: one `notice_recipients` row per person, with
  the village and town they were in then, so the read matrix stays true when people move or leave.
- Reading: the personal signed link in the message (orchard/links.py sign_notice) or opening it on the dashboard
  records the first read; a notice may ask for a confirmation (收到), recorded apart.
- Reminders go to the unread (or, for a notice that asks for 收到, the unconfirmed) only: by one click or on the
  notice's schedule. The book marks what is wanted (`wanted`); the analytics service queues the messages on the
  channels it has configured and sends them (analytics/notify/notices.py), one `notice_deliveries` row each.
- A weather warning from the county's meteorological office is the main use: a notice carries its level (blue,
  yellow, orange, red) and the plots it concerns.

Every method takes the clock (`now_ns`); nothing here reads today's date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import median
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, or_, select, update

from orchard.county import County
from orchard.records import Records
from orchard.records.people import TIERS, People, Role, User
from orchard.records.schema import notice_deliveries as D
from orchard.records.schema import notice_recipients as R
from orchard.records.schema import notices as N


class Urgency(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"  # goes out through quiet hours, like a critical alarm


class Level(StrEnum):
    """An official weather warning's colour (气象预警信号), lowest first."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


LEVEL_ICONS = {Level.BLUE: "🔵", Level.YELLOW: "🟡", Level.ORANGE: "🟠", Level.RED: "🔴"}  # messages and pages


READER_ROLES: tuple[Role, ...] = (Role.FARMER, Role.ADVISER, Role.CENTER, Role.TOWN)  # who a notice can be for
TIER_RANK = {Role.COUNTY: 3, Role.TOWN: 2, Role.CENTER: 1}


class NoticeError(ValueError):
    """A notice that cannot be sent as asked; `key` is the i18n key of the message shown to the writer."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


@dataclass(frozen=True, slots=True)
class Audience:
    """Whom a notice is for: the area (towns and villages; none: the writer's whole tier), the roles in it (none:
    every role a notice can reach), and people named one by one (in the writer's tier, whatever their role)."""

    towns: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()
    people: tuple[str, ...] = ()

    def to_json(self) -> str:
        return orjson.dumps({"towns": list(self.towns), "villages": list(self.villages),
                             "roles": [str(r) for r in self.roles], "people": list(self.people)}).decode()

    @classmethod
    def from_json(cls, raw: str) -> Audience:
        d = orjson.loads(raw or "{}")
        return cls(tuple(d.get("towns", ())), tuple(d.get("villages", ())),
                   tuple(Role(r) for r in d.get("roles", ())), tuple(d.get("people", ())))


@dataclass(frozen=True, slots=True)
class Draft:
    """A notice as written, before it goes out."""

    title: str
    body: str = ""
    urgency: Urgency = Urgency.NORMAL
    level: Level | None = None
    plots: tuple[str, ...] = ()  # "<village>/<plot>"
    audience: Audience = field(default_factory=Audience)
    confirm: bool = False
    remind_every_min: int | None = None
    remind_until_ns: int | None = None
    attachment: str | None = None  # a path under the data dir
    attachment_name: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    created_ns: int
    author: str
    title: str
    body: str
    urgency: Urgency
    level: Level | None
    plots: tuple[str, ...]
    audience: Audience
    attachment: str | None
    attachment_name: str | None
    confirm: bool
    remind_every_min: int | None
    remind_until_ns: int | None
    withdrawn_ns: int | None


@dataclass(frozen=True, slots=True)
class Recipient:
    notice_id: int
    user: str
    village: str  # "" for town staff
    town: str
    role: Role
    read_ns: int | None
    confirmed_ns: int | None
    reminders: int
    reminded_ns: int | None
    wanted: str | None

    def done(self, notice: Notice) -> bool:
        """Nothing more is asked of them: read, and confirmed when the notice asks for it."""
        return self.read_ns is not None and (not notice.confirm or self.confirmed_ns is not None)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    notice_id: int
    user: str
    channel: str
    kind: str  # notice | reminder
    status: str  # pending | sent | failed
    attempts: int
    next_try_ns: int
    last_error: str | None
    created_ns: int
    sent_ns: int | None


@dataclass(frozen=True, slots=True)
class PlaceRow:
    """One line of the read matrix: a village (or a town's own staff, village "")."""

    town: str
    village: str
    recipients: int
    read: int
    confirmed: int
    unread: tuple[str, ...]  # user names


def _notice(r: Any) -> Notice:
    g = r.__getattribute__
    return Notice(g("id"), g("created_ns"), g("author"), g("title"), g("body"), Urgency(g("urgency")),
                  Level(g("level")) if g("level") else None, tuple(orjson.loads(g("plots"))),
                  Audience.from_json(g("audience")), g("attachment"), g("attachment_name"), bool(g("confirm")),
                  g("remind_every_min"), g("remind_until_ns"), g("withdrawn_ns"))


def _recipient(r: object) -> Recipient:
    return Recipient(*(getattr(r, c.name) for c in R.columns))


def _delivery(r: object) -> Delivery:
    return Delivery(*(getattr(r, c.name) for c in D.columns))


def place_of(user: User, county: County) -> tuple[str, str] | None:
    """(village, town) a person belongs to: town staff ("", their town); county staff ("", ""); everyone else
    their village, or the deployment's only village when none is set. None when they cannot be placed (no
    village in a county of several, or one the county does not have)."""
    if user.role == Role.COUNTY:
        return "", ""
    if user.role == Role.TOWN:
        return ("", user.town) if user.town and county.town(user.town) else None
    village = user.village or (county.village_ids[0] if len(county.village_ids) == 1 else None)
    if village is None or village not in county.sites:
        return None
    return village, county.town_of(village).id


def tier_villages(user: User, county: County) -> list[str]:
    """The villages a staff member writes to and sees the notices of: their tier and everything under it."""
    if user.role == Role.COUNTY:
        return county.village_ids
    place = place_of(user, county)
    if place is None or user.role not in TIERS:
        return []
    village, town = place
    if user.role == Role.TOWN:
        entry = county.town(town)
        return [v.id for v in entry.villages] if entry else []
    return [village]


class NoticeBook:
    def __init__(self, records: Records, county: County) -> None:
        self.engine, self.county = records.engine, county
        self.people = People(records)

    # -- sending -----------------------------------------------------------------------------------------------
    def area(self, author: User, audience: Audience) -> list[str]:
        """The villages a notice goes to, checked against the writer's tier."""
        mine = tier_villages(author, self.county)
        if not mine:
            raise NoticeError("notice.not_staff")
        if not (audience.towns or audience.villages):
            return mine
        chosen: set[str] = set(audience.villages)
        for t in audience.towns:
            entry = self.county.town(t)
            if entry is None:
                raise NoticeError("notice.unknown_place", place=t)
            chosen |= {v.id for v in entry.villages}
        if unknown := sorted(chosen - set(self.county.village_ids)):
            raise NoticeError("notice.unknown_place", place=", ".join(unknown))
        if outside := sorted(chosen - set(mine)):
            raise NoticeError("notice.outside_tier", place=", ".join(outside))
        return [v for v in self.county.village_ids if v in chosen]

    def audience_of(self, author: User, audience: Audience) -> list[tuple[User, str, str]]:
        """Who a notice would reach, with their (village, town): the people of the chosen roles placed in its area
        (town staff through their town), and the people named, who must be in the writer's tier; when only people
        are named, just them. Never the writer, never the wall screen."""
        villages = set(self.area(author, audience))
        towns = {self.county.town_of(v).id for v in villages}
        allowed = self.roles_for(author)
        if above := sorted(set(audience.roles) - set(allowed)):
            raise NoticeError("notice.outside_tier", place=", ".join(above))
        roles = set(audience.roles or allowed)
        by_area = not audience.people or bool(audience.towns or audience.villages or audience.roles)
        mine = set(tier_villages(author, self.county))
        out: dict[str, tuple[User, str, str]] = {}
        for u in self.people.all():
            place = place_of(u, self.county)
            if not u.active or u.name == author.name or u.role == Role.KIOSK or place is None:
                continue
            village, town = place
            if u.name in audience.people:
                if not self._under(author, u, village, town, mine):
                    raise NoticeError("notice.outside_tier", place=u.display)
                out[u.name] = (u, village, town)
            elif by_area and u.role in roles and (village in villages if village else town in towns):
                out[u.name] = (u, village, town)
        if missing := sorted(set(audience.people) - set(out)):
            raise NoticeError("notice.unknown_person", person=", ".join(missing))
        return sorted(out.values(), key=lambda x: (x[2], x[1], x[0].role, x[0].name))

    @staticmethod
    def roles_for(author: User) -> list[Role]:
        """The roles a writer can address: their own tier's and those below (a farmer's and an adviser's is 0)."""
        rank = TIER_RANK.get(author.role, 0)
        return [r for r in READER_ROLES if TIER_RANK.get(r, 0) <= rank] if rank else []

    def reachable(self, author: User) -> list[User]:
        """Everyone a writer may name: active, placed in the county, in their tier or below, not themselves."""
        mine = set(tier_villages(author, self.county))
        if not mine:
            return []
        out = []
        for u in self.people.all():
            place = place_of(u, self.county)
            if u.active and u.name != author.name and u.role != Role.KIOSK and place is not None \
                    and self._under(author, u, *place, mine):
                out.append(u)
        return out

    @staticmethod
    def _under(author: User, u: User, village: str, town: str, mine: set[str]) -> bool:
        """Is this person in the writer's tier or below it?"""
        if author.role == Role.COUNTY:
            return True
        if u.role == Role.COUNTY or (u.role == Role.TOWN and author.role != Role.TOWN):
            return False
        return village in mine if village else town == author.town

    def send(self, author: User, draft: Draft, now_ns: int) -> Notice:
        """Record the notice and one recipient row per person it reaches, each wanting the message, in one
        transaction; NoticeError when it reaches nobody or leaves the writer's tier."""
        title = draft.title.strip()
        if not title:
            raise NoticeError("notice.no_title")
        if draft.remind_every_min is not None and draft.remind_every_min < 5:
            raise NoticeError("notice.remind_too_often")
        reached = self.audience_of(author, draft.audience)
        if not reached:
            raise NoticeError("notice.nobody")
        with self.engine.begin() as conn:
            key = conn.execute(insert(N).values(
                created_ns=now_ns, author=author.name, title=title, body=draft.body, urgency=draft.urgency,
                level=draft.level, plots=orjson.dumps(list(draft.plots)).decode(),
                audience=draft.audience.to_json(), attachment=draft.attachment,
                attachment_name=draft.attachment_name, confirm=draft.confirm,
                remind_every_min=draft.remind_every_min, remind_until_ns=draft.remind_until_ns)).inserted_primary_key
            assert key is not None
            nid = int(key[0])
            conn.execute(insert(R), [{"notice_id": nid, "user": u.name, "village": village, "town": town,
                                      "role": u.role, "reminders": 0, "wanted": "notice"}
                                     for u, village, town in reached])
        found = self.get(nid)
        assert found is not None
        return found

    def withdraw(self, notice_id: int, now_ns: int) -> None:
        """No more reminders or unsent messages; what was read stays recorded."""
        with self.engine.begin() as conn:
            conn.execute(update(N).where(N.c.id == notice_id, N.c.withdrawn_ns.is_(None)).values(withdrawn_ns=now_ns))
            conn.execute(update(R).where(R.c.notice_id == notice_id).values(wanted=None))
            conn.execute(update(D).where(D.c.notice_id == notice_id, D.c.status == "pending")
                         .values(status="failed", last_error="withdrawn"))

    # -- reading -----------------------------------------------------------------------------------------------
    def get(self, notice_id: int) -> Notice | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(N).where(N.c.id == notice_id)).first()
        return _notice(row) if row is not None else None

    def recipient(self, notice_id: int, user: str) -> Recipient | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(R).where(R.c.notice_id == notice_id, R.c.user == user)).first()
        return _recipient(row) if row is not None else None

    def recipients(self, notice_id: int) -> list[Recipient]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(R).where(R.c.notice_id == notice_id)
                                .order_by(R.c.town, R.c.village, R.c.user)).all()
        return [_recipient(r) for r in rows]

    def read(self, notice_id: int, user: str, now_ns: int) -> Recipient | None:
        """Record the first read (later opens keep it); None when the notice was not sent to them."""
        with self.engine.begin() as conn:
            conn.execute(update(R).where(R.c.notice_id == notice_id, R.c.user == user, R.c.read_ns.is_(None))
                         .values(read_ns=now_ns))
        return self.recipient(notice_id, user)

    def confirm(self, notice_id: int, user: str, now_ns: int) -> Recipient | None:
        """收到: confirmed (and read, if the read was not recorded yet)."""
        with self.engine.begin() as conn:
            conn.execute(update(R).where(R.c.notice_id == notice_id, R.c.user == user, R.c.read_ns.is_(None))
                         .values(read_ns=now_ns))
            conn.execute(update(R).where(R.c.notice_id == notice_id, R.c.user == user,
                                         R.c.confirmed_ns.is_(None)).values(confirmed_ns=now_ns))
        return self.recipient(notice_id, user)

    def for_user(self, user: str, limit: int = 100) -> list[tuple[Notice, Recipient]]:
        """The notices sent to a person, newest first, with their own read state."""
        stmt = (select(N, *[c.label(f"r_{c.name}") for c in R.columns]).join(R, R.c.notice_id == N.c.id)
                .where(R.c.user == user).order_by(N.c.created_ns.desc()).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [(_notice(r), Recipient(*(getattr(r, f"r_{c.name}") for c in R.columns))) for r in rows]

    def unread_count(self, user: str) -> int:
        stmt = (select(func.count()).select_from(R).join(N, N.c.id == R.c.notice_id)
                .where(R.c.user == user, N.c.withdrawn_ns.is_(None),
                       or_(R.c.read_ns.is_(None), and_(N.c.confirm.is_(True), R.c.confirmed_ns.is_(None)))))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def sent_in(self, villages: Iterable[str], limit: int = 100) -> list[Notice]:
        """The notices that reached anyone in these villages (or those villages' towns' staff), newest first: what
        a staff member's tier sees."""
        vs = list(villages)
        towns = sorted({self.county.town_of(v).id for v in vs})
        if not vs:
            return []
        reached = select(R.c.notice_id).where(or_(R.c.village.in_(vs), and_(R.c.village == "", R.c.town.in_(towns))))
        stmt = select(N).where(N.c.id.in_(reached)).order_by(N.c.created_ns.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_notice(r) for r in conn.execute(stmt)]

    def matrix(self, notice_id: int, villages: Iterable[str] | None = None) -> list[PlaceRow]:
        """Per village (and per town for its own staff): how many it reached, read, confirmed, and who has not
        read; cut to `villages` (a tier's view) when given."""
        keep = set(villages) if villages is not None else None
        towns = {self.county.town_of(v).id for v in keep} if keep is not None else None
        rows: dict[tuple[str, str], list[Recipient]] = {}
        for r in self.recipients(notice_id):
            if keep is not None and not (r.village in keep or (r.village == "" and r.town in (towns or ()))):
                continue
            rows.setdefault((r.town, r.village), []).append(r)
        order = {v: n for n, v in enumerate(self.county.village_ids)}
        return [PlaceRow(town, village, len(rs), sum(r.read_ns is not None for r in rs),
                         sum(r.confirmed_ns is not None for r in rs),
                         tuple(r.user for r in rs if r.read_ns is None))
                for (town, village), rs in sorted(rows.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], -1)))]

    def first_read_s(self, notice_id: int) -> float | None:
        """Median seconds from sending to each reader's first read (the county view's "time to read")."""
        notice = self.get(notice_id)
        reads = [r.read_ns for r in self.recipients(notice_id) if r.read_ns is not None]
        if notice is None or not reads:
            return None
        return float(median((t - notice.created_ns) / 1e9 for t in reads))

    # -- reminders ---------------------------------------------------------------------------------------------
    def remind(self, notice_id: int, now_ns: int, villages: Iterable[str] | None = None) -> list[str]:
        """Ask for a reminder to everyone who has not done what the notice asks (read; 收到 when it asks for it),
        in `villages` when given; returns who. Nothing for a withdrawn notice."""
        notice = self.get(notice_id)
        if notice is None or notice.withdrawn_ns is not None:
            return []
        keep = set(villages) if villages is not None else None
        towns = {self.county.town_of(v).id for v in keep} if keep is not None else set()
        who = [r.user for r in self.recipients(notice_id) if not r.done(notice)
               and (keep is None or r.village in keep or (r.village == "" and r.town in towns))]
        if who:
            with self.engine.begin() as conn:
                conn.execute(update(R).where(R.c.notice_id == notice_id, R.c.user.in_(who))
                             .values(wanted="reminder", reminders=R.c.reminders + 1, reminded_ns=now_ns))
        return who

    def scheduled(self, now_ns: int) -> dict[int, list[str]]:
        """The reminders a notice's own schedule asks for now: every `remind_every_min` since it was sent or last
        reminded, until `remind_until_ns`; returns who was asked to be reminded, per notice."""
        stmt = select(N).where(N.c.remind_every_min.is_not(None), N.c.withdrawn_ns.is_(None),
                               or_(N.c.remind_until_ns.is_(None), N.c.remind_until_ns > now_ns))
        with self.engine.connect() as conn:
            due = [_notice(r) for r in conn.execute(stmt)]
        out: dict[int, list[str]] = {}
        for n in due:
            assert n.remind_every_min is not None
            every = n.remind_every_min * 60 * 1_000_000_000
            last = max([n.created_ns, *(r.reminded_ns or 0 for r in self.recipients(n.id))])
            if now_ns - last >= every and (who := self.remind(n.id, now_ns)):
                out[n.id] = who
        return out

    # -- messages (the analytics service) ------------------------------------------------------------------------
    def wanted(self, limit: int = 500) -> list[tuple[Notice, Recipient]]:
        """Recipients waiting for a message to be queued."""
        stmt = (select(R).where(R.c.wanted.is_not(None)).order_by(R.c.notice_id, R.c.user).limit(limit))
        with self.engine.connect() as conn:
            rs = [_recipient(r) for r in conn.execute(stmt)]
        notices = {i: self.get(i) for i in {r.notice_id for r in rs}}
        return [(n, r) for r in rs if (n := notices[r.notice_id]) is not None]

    def queue(self, rows: Mapping[tuple[int, str], Iterable[tuple[str, int]]], kind_of: Mapping[tuple[int, str], str],
              now_ns: int) -> int:
        """One pending delivery per (notice, user) -> (channel, not before), and their `wanted` cleared, in one
        transaction (a crash in between queues nothing twice); returns how many were queued."""
        n = 0
        with self.engine.begin() as conn:
            for (nid, user), channels in rows.items():
                for channel, not_before in channels:
                    conn.execute(insert(D).values(notice_id=nid, user=user, channel=channel, kind=kind_of[(nid, user)],
                                                  status="pending", attempts=0, next_try_ns=max(now_ns, not_before),
                                                  created_ns=now_ns))
                    n += 1
                conn.execute(update(R).where(R.c.notice_id == nid, R.c.user == user).values(wanted=None))
        return n

    def due(self, now_ns: int, limit: int = 200) -> list[Delivery]:
        stmt = (select(D).where(D.c.status == "pending", D.c.next_try_ns <= now_ns)
                .order_by(D.c.next_try_ns, D.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt)]

    def sent(self, ids: Iterable[int], now_ns: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(D).where(D.c.id.in_(list(ids))).values(
                status="sent", sent_ns=now_ns, last_error=None, attempts=D.c.attempts + 1))

    def failed(self, ids: Iterable[int], error: str, retry_at_ns: int | None) -> None:
        values: dict[str, object] = {"attempts": D.c.attempts + 1, "last_error": error[:500]}
        values |= {"next_try_ns": retry_at_ns} if retry_at_ns is not None else {"status": "failed"}
        with self.engine.begin() as conn:
            conn.execute(update(D).where(D.c.id.in_(list(ids))).values(**values))

    def postpone(self, ids: Iterable[int], until_ns: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(D).where(D.c.id.in_(list(ids)), D.c.status == "pending").values(next_try_ns=until_ns))

    def deliveries(self, notice_id: int) -> list[Delivery]:
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(select(D).where(D.c.notice_id == notice_id).order_by(D.c.id))]
