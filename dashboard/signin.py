"""Who is looking: a signed-in user (local password or single sign-on), or a wall screen with a signed kiosk link.
Anyone else gets the sign-in form and nothing else: `who()` stops the run before a page reads any data.

The session token lives in Streamlit's server-side session state and in an HttpOnly cookie (dashboard/cookie.py:
how it is set), never in the URL; a reload, a new tab or a link finds the cookie. The records DB holds the
token's hash and decides whether it is still good (absolute and idle expiry, user still active) at least every
RECHECK_S.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import cookie, shell
from dashboard.address import client_address
from orchard.access import KIOSK, Principal
from orchard.links import LinkError, verify_screen
from orchard.records.accounts import LoginError, Session
from orchard.records.people import People

TOKEN = "auth_token"
OIDC_PROVIDER = "county"  # the [auth.county] section dashboard/server.py writes from the settings
RECHECK_S = 10.0  # a disabled user or an ended session stops working within this long, even mid-fragment


def _client() -> str:
    try:
        peer = st.context.ip_address or "127.0.0.1"  # Streamlit says None for a loopback peer (a local proxy)
        return client_address(peer, st.context.headers, shell.settings().dashboard.trusted_proxies)
    except (AttributeError, RuntimeError):
        return "unknown"


def _kiosk_link() -> Principal | None:
    """The wall screen: a valid signed link in ?kiosk= (remembered for the session, as page switches may drop
    query parameters). "?kiosk=1" is only the wall-screen look, for someone already signed in."""
    param = st.query_params.get("kiosk", "")
    token = None if param.lower() in ("", "0", "1", "true", "yes", "false", "no") else param
    token = token or st.session_state.get("kiosk_token")
    if not token:
        return None
    secret = shell.settings().dashboard.kiosk_secret
    if secret is None:
        raise LinkError("tampered")
    try:
        verify_screen(token, secret.get_secret_value(), time.time())
    except LinkError:
        st.session_state.pop("kiosk_token", None)
        raise
    st.session_state["kiosk_token"] = token
    return KIOSK


def _single_sign_on() -> Principal | None:
    """After st.login: the identity's e-mail names an active user here, who gets a session like a password user."""
    if not shell.settings().dashboard.oidc or not getattr(st.user, "is_logged_in", False):
        return None
    email = str(st.user.get("email") or "").strip().lower()
    people = People(shell.records())
    user = next((u for u in people.all() if u.active and (u.email or "").lower() == email and email), None)
    if user is None:
        st.error(shell.view().t("auth.sso_unknown", email=email or "?"))
        if st.button(shell.view().t("auth.logout"), key="sso_out"):
            st.logout()
        st.stop()
    session = shell.accounts().open_session(user.name, time.time_ns(), via="oidc")
    _signed_in(session)
    return shell.accounts().principal(session.token, time.time_ns())


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(cookie.COOKIE)
    except (AttributeError, RuntimeError):  # no browser behind this run
        return None
    return value if isinstance(value, str) and value else None  # (AppTest's context is a stand-in)


def _signed_in(session: Session) -> None:
    """Remember the session for this tab, and have the browser keep it as a cookie (the image drawn by
    bind_cookie on the next run sets it)."""
    ss = st.session_state
    ss[TOKEN] = session.token
    ss["just_signed_in"] = True
    max_age = max(60, (session.expires_ns - time.time_ns()) // 1_000_000_000)
    ss["cookie_code"] = cookie.HANDOFFS.issue(session.token, _client(), max_age)


def just_signed_in() -> bool:
    """True once, on the first run after signing in."""
    return bool(st.session_state.pop("just_signed_in", False))


def bind_cookie() -> None:
    """Right after signing in: the invisible image whose fetch sets the session cookie (dashboard/cookie.py),
    drawn on every run until the browser has fetched it (a quick rerun may drop an image before it loads)."""
    code = st.session_state.get("cookie_code")
    if code and not cookie.HANDOFFS.pending(code):
        st.session_state.pop("cookie_code", None)
    elif code:
        st.html(f'<img src="/auth/bind?code={code}" alt="" width="1" height="1" style="position:absolute;opacity:0">')


def current() -> Principal | None:
    """The principal of this run, or None when nobody is signed in. A bad kiosk link says so and stops."""
    ss = st.session_state
    try:
        screen = _kiosk_link()
    except LinkError as e:
        st.error(shell.view().t(f"auth.kiosk_{e.reason}"))
        st.stop()
    if screen is not None:
        return screen
    now = time.monotonic()
    cached = ss.get("principal")
    if cached is not None and now - ss.get("principal_checked", 0.0) < RECHECK_S:
        return cached
    token = ss.get(TOKEN) or _cookie()
    principal = shell.accounts().principal(token, time.time_ns()) or _single_sign_on()
    if principal is None:
        ss.pop(TOKEN, None)
        ss.pop("principal", None)
        return None
    ss["principal"], ss["principal_checked"] = principal, now
    return principal


def who(*roles: str) -> Principal:
    """The principal of this run, for a page: the sign-in form when nobody is signed in, and a refusal when the
    page is not for their role (roles empty: any). Either way the run stops before the page reads anything."""
    principal = current()
    if principal is None:
        form()
        st.stop()
    if roles and principal.role not in roles:
        st.error(shell.view().t("auth.forbidden"))
        st.stop()
    return principal


def still(me: Principal) -> Principal:
    """For a self-refreshing part of a page (an st.fragment), at the top of each of its runs: the page's
    principal, checked again (a fragment run does not pass the page's own check). A session that ended or a user
    disabled gets the sign-in form, an expired wall link its message, someone else's tab "no access"; either way
    the run stops before it reads anything."""
    principal = current()  # a bad wall link says so and stops here
    if principal is None:
        form()
        st.stop()
    if (principal.name, principal.role) != (me.name, me.role):
        st.error(shell.view().t("auth.forbidden"))
        st.stop()
    return principal


def form() -> None:
    v = shell.view()
    if st.session_state.pop("cookie_forget", False):
        st.html('<img src="/auth/forget" alt="" width="1" height="1" style="position:absolute;opacity:0">')
    st.title(f"🥝 {v.t('app.title')}")
    if ss_msg := st.session_state.pop("auth_message", None):
        st.info(v.t(ss_msg))
    with st.form("signin", border=True):
        st.subheader(v.t("auth.title"))
        name = st.text_input(v.t("auth.user"), key="signin_user", max_chars=64)
        password = st.text_input(v.t("auth.password"), type="password", key="signin_password", max_chars=256)
        go = st.form_submit_button(v.t("auth.go"), type="primary")
    if go:
        try:
            session = shell.accounts().login(name, password, _client(), time.time_ns())
        except LoginError as e:
            if e.reason == "paused":
                st.error(v.t("auth.paused", minutes=max(1, -(-e.retry_s // 60))))
            else:
                st.error(v.t(f"auth.{e.reason}"))
        else:
            _signed_in(session)
            st.rerun()
    if shell.settings().dashboard.oidc and st.button(v.t("auth.sso"), key="signin_sso"):
        st.login(OIDC_PROVIDER)
    st.caption(v.t("auth.help"))


def sign_out() -> None:
    """Ends the session (in every tab and on every device that shares its cookie), and has the browser drop the
    cookie (the image drawn by the sign-in form on the next run)."""
    tokens = {st.session_state.pop(TOKEN, None), _cookie()} - {None}
    for token in tokens:
        shell.accounts().logout(str(token))
    st.session_state.pop("principal", None)
    st.session_state["cookie_forget"] = True
    st.session_state["auth_message"] = "auth.signed_out"
    if getattr(st.user, "is_logged_in", False):
        st.logout()
    st.rerun()
