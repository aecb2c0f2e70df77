"""Dashboard sign-in: argon2id password hashes, a sliding-window rate limit on failures (per account and per
address), and server-side sessions that end after `session_hours` or `idle_minutes` without use.

The limit holds under a burst: each attempt is counted and recorded (as a failure, until the password proves
right) in one locked step before any hashing starts, so 30 attempts at once still check at most the limit; and
at most HASHING verifications run at a time (argon2id takes 64 MiB each), so a burst waits instead of taking the
server's memory.

A session token is 32 random bytes shown to the browser once; the records DB keeps only its SHA-256, so reading
the table gives no way in, and signing out or disabling a user ends their sessions at once.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, func, insert, select, text, update

from orchard.access import Principal, principal_of
from orchard.records import Records
from orchard.records.people import People
from orchard.records.schema import login_attempts as LA
from orchard.records.schema import passwords as PW
from orchard.records.schema import sessions as S
from orchard.settings import DashboardSettings

NS = 1_000_000_000
MIN_PASSWORD = 10
# Verifying against this when the user does not exist keeps the answer time the same for known and unknown names.
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("not a password of anyone")
HASHING = 2  # argon2id verifications at once in one process: 2 x 64 MiB at most
_HASHING = threading.BoundedSemaphore(HASHING)
_LOGIN_LOCK = 7_206_002  # pg_advisory_xact_lock key: one attempt reserved at a time


class LoginError(Exception):
    """Sign-in refused. `reason` is bad (name or password wrong: never says which), paused (rate limit) or
    inactive; `retry_s` how long until a paused sign-in may be tried again."""

    def __init__(self, reason: str, retry_s: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.retry_s = reason, retry_s


class WeakPassword(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: str
    expires_ns: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_id(token: str) -> str:
    """What a session is known by outside the browser (its token's hash, as stored): signed video addresses carry
    it, so signing out ends them too; it cannot be turned back into the token."""
    return _digest(token)


def _clean(typed: str) -> str:
    """What a person typed, safe to store and compare: printable, trimmed, bounded (PostgreSQL refuses NUL)."""
    return "".join(c for c in typed if c.isprintable()).strip()[:64]


def check_strength(password: str, user: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"at least {MIN_PASSWORD} characters")
    if user.lower() in password.lower():
        raise WeakPassword("must not contain the user name")


class Accounts:
    def __init__(self, records: Records, policy: DashboardSettings) -> None:
        self.engine, self.policy, self.people = records.engine, policy, People(records)

    # -- passwords --
    def set_password(self, user: str, password: str, now_ns: int) -> None:
        if self.people.get(user) is None:
            raise KeyError(user)
        check_strength(password, user)
        row = {"hash": _HASHER.hash(password), "changed_ns": now_ns}
        with self.engine.begin() as conn:
            if conn.execute(update(PW).where(PW.c.user == user).values(**row)).rowcount == 0:
                conn.execute(insert(PW).values(user=user, **row))
            conn.execute(delete(S).where(S.c.user == user))  # a new password ends the old sessions

    def has_password(self, user: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(PW.c.user).where(PW.c.user == user)).first() is not None

    # -- the rate limit --
    def _failures(self, conn: Connection, column: str, value: str, since_ns: int) -> tuple[int, int | None]:
        """Failed attempts since the window start and the oldest of them (when the pause will lift)."""
        col = LA.c[column]
        n, oldest = conn.execute(select(func.count(), func.min(LA.c.time_ns))
                                 .where(col == value, LA.c.ok.is_(False), LA.c.time_ns >= since_ns)).one()
        return int(n), oldest

    def _wait(self, conn: Connection, user: str, client: str, now_ns: int) -> int:
        window = int(self.policy.login_window_min * 60 * NS)
        since = now_ns - window
        wait = 0
        for column, value, limit in (("user", user, self.policy.login_max_failures),
                                     ("client", client, self.policy.client_max_failures)):
            n, oldest = self._failures(conn, column, value, since)
            if n >= limit and oldest is not None:
                wait = max(wait, -(-(oldest + window - now_ns) // NS))
        return wait

    def paused_for(self, user: str, client: str, now_ns: int) -> int:
        """Seconds until this account (or address) may try again; 0 when it may now."""
        with self.engine.connect() as conn:
            return self._wait(conn, user, client, now_ns)

    def _reserve(self, user: str, client: str, now_ns: int) -> int:
        """Count the failures and record this attempt as one, in one step that no other attempt can interleave
        with (SQLite: BEGIN IMMEDIATE takes the write lock first; PostgreSQL: an advisory lock). Returns the
        attempt's id; raises LoginError("paused") when the account or the address is over its limit."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOGIN_LOCK})
            if (wait := self._wait(conn, user, client, now_ns)) > 0:
                conn.rollback()
                raise LoginError("paused", wait)
            key = conn.execute(insert(LA).values(user=user, client=client, time_ns=now_ns, ok=False))
            conn.execute(delete(LA).where(LA.c.time_ns < now_ns - 86400 * NS))  # nothing older than a day matters
            conn.commit()
        assert key.inserted_primary_key is not None
        return int(key.inserted_primary_key[0])

    def _succeeded(self, attempt: int, user: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(LA).where(LA.c.id == attempt).values(ok=True))
            conn.execute(delete(LA).where(LA.c.user == user, LA.c.ok.is_(False)))  # a success forgives

    # -- sign-in and sessions --
    def login(self, user: str, password: str, client: str, now_ns: int) -> Session:
        user, client = _clean(user), _clean(client)
        attempt = self._reserve(user, client, now_ns)  # counted before any hashing
        with self.engine.connect() as conn:
            stored = conn.execute(select(PW.c.hash).where(PW.c.user == user)).scalar()
        with _HASHING:
            try:
                _HASHER.verify(stored or _DUMMY, password)
                ok = stored is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        person = self.people.get(user) if ok else None
        if person is None or not person.active:
            raise LoginError("inactive" if ok else "bad")  # the reserved attempt stays a failure
        self._succeeded(attempt, user)
        if stored is not None and _HASHER.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(update(PW).where(PW.c.user == user).values(hash=_HASHER.hash(password)))
        return self.open_session(user, now_ns, via="password")

    def open_session(self, user: str, now_ns: int, via: str = "password") -> Session:
        """A new session for a user already proven (by password, or by the identity provider)."""
        token = secrets.token_urlsafe(32)
        expires = now_ns + int(self.policy.session_hours * 3600 * NS)
        with self.engine.begin() as conn:
            conn.execute(insert(S).values(token_hash=_digest(token), user=user, created_ns=now_ns,
                                          expires_ns=expires, seen_ns=now_ns, via=via))
            conn.execute(delete(S).where(S.c.expires_ns < now_ns))
        return Session(token, user, expires)

    def principal(self, token: str | None, now_ns: int) -> Principal | None:
        """The signed-in person of a session token, or None when it is unknown, expired, idle too long, or its
        user was disabled. Each use slides the idle timeout."""
        if not token:
            return None
        idle = int(self.policy.idle_minutes * 60 * NS)
        with self.engine.begin() as conn:
            row = conn.execute(select(S).where(S.c.token_hash == _digest(token))).first()
            if row is None:
                return None
            if now_ns >= row.expires_ns or now_ns - row.seen_ns > idle:
                conn.execute(delete(S).where(S.c.token_hash == row.token_hash))
                return None
            conn.execute(update(S).where(S.c.token_hash == row.token_hash).values(seen_ns=now_ns))
        person = self.people.get(row.user)
        if person is None or not person.active:
            return None
        return principal_of(person, self.people)

    def alive(self, token_hash: str, now_ns: int) -> bool:
        """Whether the session of this token hash (`session_id`) is still good: known, not expired, not idle too
        long, its user active. Does not slide the idle timeout (a video segment is not the person acting)."""
        idle = int(self.policy.idle_minutes * 60 * NS)
        with self.engine.connect() as conn:
            row = conn.execute(select(S).where(S.c.token_hash == token_hash)).first()
        if row is None or now_ns >= row.expires_ns or now_ns - row.seen_ns > idle:
            return False
        person = self.people.get(row.user)
        return person is not None and person.active

    def logout(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(S).where(S.c.token_hash == _digest(token)))

    def end_sessions(self, user: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(S).where(S.c.user == user)).rowcount)
