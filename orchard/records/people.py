"""Who is who: users with a role, their language, how to reach them, their quiet hours, and the plots a farmer
owns or an adviser covers. Read by the alarm routing (analytics) and, later, the dashboard's sign-in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Literal

import orjson
from sqlalchemy import delete, insert, select

from orchard.records import Records
from orchard.records.schema import user_plots as UP
from orchard.records.schema import users as U


class Role(StrEnum):
    """Who a person is to the system (orchard/access.py says what each may see and do)."""

    FARMER = "farmer"
    ADVISER = "adviser"
    CENTER = "center"  # the village's command center: village staff (村级)
    KIOSK = "kiosk"  # the wall screen: not a person, a signed link
    TOWN = "town"  # town staff (乡镇): their town's villages
    COUNTY = "county"  # county staff (县级): every village of the county


TIERS: tuple[Role, ...] = (Role.COUNTY, Role.TOWN, Role.CENTER)  # the staff tiers, who write notices; highest first


ROLES: tuple[Role, ...] = tuple(Role)
class ChannelName(StrEnum):
    """The channels a person can be reached on: the one list of them (analytics/notify/channels/ has a module for
    each, and a test holds the two together)."""

    INBOX = "inbox"
    DINGTALK = "dingtalk"
    WECOM = "wecom"
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


CHANNELS: tuple[str, ...] = tuple(ChannelName)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    display: str
    role: Role
    lang: str = "zh"
    phone: str | None = None
    email: str | None = None
    channels: tuple[str, ...] = ("inbox",)
    quiet_from: str | None = None  # "22:00"
    quiet_to: str | None = None  # "06:30"
    active: bool = True
    village: str | None = None  # the village they belong to (None: the deployment's one village)
    town: str | None = None  # town staff: their town

    def __post_init__(self) -> None:
        if self.role not in ROLES:  # "farmer" from a form or the CLI is Role.FARMER
            raise ValueError(f"unknown role {self.role!r}; one of {', '.join(ROLES)}")
        object.__setattr__(self, "role", Role(self.role))
        if self.role == Role.TOWN and not self.town:
            raise ValueError("town staff need their town (--town)")
        if self.role == Role.COUNTY and (self.town or self.village):
            raise ValueError("county staff belong to no town or village")

    def quiet_at(self, local: time) -> bool:
        """Within the user's quiet hours (which may run over midnight)?"""
        if not (self.quiet_from and self.quiet_to):
            return False
        start, end = time.fromisoformat(self.quiet_from), time.fromisoformat(self.quiet_to)
        return start <= local < end if start <= end else local >= start or local < end

    def quiet_end(self, now_ns: int, tz: tzinfo) -> int | None:
        """When the quiet hours that hold `now_ns` end (epoch ns), None when it is not quiet for them now."""
        local = datetime.fromtimestamp(now_ns / 1e9, tz)
        if not self.quiet_at(local.time()) or not self.quiet_to:
            return None
        end = datetime.combine(local.date(), datetime.strptime(self.quiet_to, "%H:%M").time(), tz)
        if end <= local:
            end += timedelta(days=1)
        return int(end.timestamp()) * 1_000_000_000


class People:
    def __init__(self, records: Records, site: str | None = None) -> None:
        self.engine = records.engine
        # The village whose plots `for_plot` means: its own people (and those with no village, from a one-village
        # deployment); None: plot ids are the deployment's one village's. Every village has a plot p01.
        self.site = site

    def upsert(self, u: User) -> None:
        if u.role not in ROLES:
            raise ValueError(f"unknown role {u.role!r}; one of {', '.join(ROLES)}")
        if bad := sorted(set(u.channels) - set(CHANNELS)):
            raise ValueError(f"unknown channels {bad}; known: {', '.join(CHANNELS)}")
        for t in (u.quiet_from, u.quiet_to):
            if t is not None:
                time.fromisoformat(t)  # "HH:MM", or ValueError
        row = {"name": u.name, "display": u.display, "role": u.role, "lang": u.lang, "phone": u.phone,
               "email": u.email, "channels": orjson.dumps(list(u.channels)).decode(), "quiet_from": u.quiet_from,
               "quiet_to": u.quiet_to, "active": u.active, "village": u.village, "town": u.town}
        with self.engine.begin() as conn:
            exists = conn.execute(select(U.c.name).where(U.c.name == u.name)).first() is not None
            if exists:
                conn.execute(U.update().where(U.c.name == u.name).values(**row))
            else:
                conn.execute(insert(U).values(**row))

    def set_plots(self, user: str, plots: Iterable[str], relation: Literal["owns", "covers"]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(UP).where(UP.c.user == user))
            rows = [{"user": user, "plot": p, "relation": relation} for p in sorted(set(plots))]
            if rows:
                conn.execute(insert(UP), rows)

    def _users(self, stmt: object) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()  # type: ignore[call-overload]
        return [User(r.name, r.display, r.role, r.lang, r.phone, r.email, tuple(orjson.loads(r.channels)),
                     r.quiet_from, r.quiet_to, bool(r.active), r.village, r.town) for r in rows]

    def get(self, name: str) -> User | None:
        found = self._users(select(U).where(U.c.name == name))
        return found[0] if found else None

    def named(self, names: Iterable[str]) -> dict[str, User]:
        """These people by name, in one query (those that do not exist are left out)."""
        wanted = sorted(set(names))
        return {u.name: u for u in self._users(select(U).where(U.c.name.in_(wanted)))} if wanted else {}

    def all(self) -> list[User]:
        return self._users(select(U).order_by(U.c.role, U.c.name))

    def here(self) -> list[User]:
        """The people of this village (with those of no village, but not the town's or county's staff); everyone
        when the book has no village."""
        if self.site is None:
            return self.all()
        return self._users(select(U).where(U.c.village.is_(None) | (U.c.village == self.site),
                                           U.c.role.not_in([Role.TOWN, Role.COUNTY])).order_by(U.c.role, U.c.name))

    def plots_of(self, user: str) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(UP.c.plot).where(UP.c.user == user))}

    def for_plot(self, plot: str | None, role: Role) -> list[User]:
        """Active users of a role tied to a plot of this village: the farmers who own it, the advisers who cover
        it; for the command center role, everyone of it (the village's center sees every plot)."""
        stmt = select(U).where(U.c.role == role, U.c.active.is_(True))
        if self.site is not None:
            stmt = stmt.where(U.c.village.is_(None) | (U.c.village == self.site))
        if role != "center":
            if plot is None:
                return []
            stmt = stmt.where(U.c.name.in_(select(UP.c.user).where(UP.c.plot == plot)))
        return self._users(stmt.order_by(U.c.name))
