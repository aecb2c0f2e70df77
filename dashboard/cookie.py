"""The sign-in cookie: a dashboard session (records DB, orchard/records/accounts.py) bound to the browser, so a
reload, a new tab, a bookmark or a notification's link keep the person signed in until the session ends.

How it is set, with Streamlit's supported APIs only:
1. The sign-in form (dashboard/signin.py) checks the password over Streamlit's websocket, as before, and opens
   the session. It then asks `handoff()` for a one-time code (single use, HANDOFF_S seconds, kept in this
   process's memory, good only for the address that signed in) and draws it as an invisible image whose
   address is this module's route `/auth/bind?code=...`.
2. The browser fetches that image like any other; the route answers with a 1x1 GIF and sets the cookie:
   `orchard_session=<token>; HttpOnly; SameSite=Lax; Path=/` (Secure when the public address is HTTPS or a
   trusted proxy says the browser came over HTTPS), lasting as long as the session may.
3. Every run reads it back with `st.context.cookies` (dashboard/signin.py); the records DB decides whether the
   session is still good (absolute and idle expiry, user still active), so signing out, a new password or a
   disabled user end it in every tab and on every device at once.
4. Signing out draws `/auth/forget`, which deletes the cookie, but only once its session has ended (so another
   site cannot sign a person out by embedding it).

The routes are mounted with `st.App` (dashboard/asgi.py), which `streamlit run` serves like any script. The
token is never in a URL or a page; the code is, for at most HANDOFF_S seconds and once. Several dashboard
processes behind one address need sticky sessions (Streamlit's websocket needs them anyway).
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dashboard.address import client_address, is_trusted
from orchard.logs import event
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.settings import Settings

log = logging.getLogger("orchard.dashboard")

COOKIE = "orchard_session"
HANDOFF_S = 60.0
# A transparent 1x1 GIF: what the invisible image of the sign-in form shows.
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
_NO_STORE = {"Cache-Control": "no-store", "Content-Type": "image/gif"}


class Handoffs:
    """One-time codes that carry a session token from the websocket to the browser's cookie."""

    def __init__(self, clock: object = time.monotonic) -> None:
        self._codes: dict[str, tuple[str, str, float, int]] = {}  # code -> token, client, deadline, max_age_s
        self._lock = threading.Lock()
        self._clock = clock

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def issue(self, token: str, client: str, max_age_s: int) -> str:
        code = secrets.token_urlsafe(24)
        now = self._now()
        with self._lock:
            self._codes = {c: v for c, v in self._codes.items() if v[2] > now}  # drop the stale ones
            self._codes[code] = (token, client, now + HANDOFF_S, max_age_s)
        return code

    def pending(self, code: str) -> bool:
        """Not yet redeemed and not stale: the page should still draw its image."""
        with self._lock:
            entry = self._codes.get(code)
        return entry is not None and entry[2] > self._now()

    def redeem(self, code: str, client: str) -> tuple[str, int] | None:
        """The token and its cookie's lifetime, once; None for an unknown, used, stale or foreign code."""
        with self._lock:
            entry = self._codes.pop(code, None)
        if entry is None:
            return None
        token, issued_to, deadline, max_age_s = entry
        if self._now() > deadline or issued_to != client:
            return None
        return token, max_age_s


HANDOFFS = Handoffs()


@functools.cache
def _settings() -> Settings:
    return Settings()


@functools.cache
def _accounts() -> Accounts:
    settings = _settings()
    return Accounts(Records.open(settings), settings.dashboard)


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


def browser_address(request: Request) -> str:
    """The browser's address as the sign-in limit counts it (dashboard/address.py)."""
    return client_address(_peer(request) or "127.0.0.1", request.headers, _settings().dashboard.trusted_proxies)


async def bind(request: Request) -> Response:
    """The sign-in form's invisible image: turns a one-time code into the session cookie."""
    client = browser_address(request)
    got = HANDOFFS.redeem(request.query_params.get("code", ""), client)
    response = Response(PIXEL, headers=_NO_STORE)
    if got is None:
        event(log, "session_cookie_refused", logging.WARNING, client=client)
        return response
    token, max_age = got
    s = _settings()
    peer = _peer(request)
    https = s.notify.public_url.lower().startswith("https://") or request.url.scheme == "https" or (
        is_trusted(peer, s.dashboard.trusted_proxies)
        and request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https")
    response.set_cookie(COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="lax", secure=https)
    event(log, "session_cookie_set", client=client, secure=https)
    return response


async def forget(request: Request) -> Response:
    """Signing out's invisible image: deletes the cookie once its session is over (not before: no other site can
    sign anyone out through it)."""
    response = Response(PIXEL, headers=_NO_STORE)
    token = request.cookies.get(COOKIE)
    if token and await run_in_threadpool(_accounts().principal, token, time.time_ns()) is None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


def routes() -> list[BaseRoute]:
    return [Route("/auth/bind", bind, methods=["GET"]), Route("/auth/forget", forget, methods=["GET"])]
