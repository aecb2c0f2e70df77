"""Who is looking: a signed-in user (local password or single sign-on), or a wall screen with a signed kiosk link.
Anyone else gets the sign-in form and nothing else: `who()` stops the run before a page reads any data.

The session token lives in Streamlit's server-side session state, never in the URL; the records DB holds its hash
and decides whether it is still good (absolute and idle expiry, user still active) at least every RECHECK_S.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence

import streamlit as st

from dashboard import shell
from orchard.access import KIOSK, Principal
from orchard.links import LinkError, verify_screen
from orchard.records.accounts import LoginError
from orchard.records.people import People

TOKEN = "auth_token"
OIDC_PROVIDER = "county"  # the [auth.county] section dashboard/server.py writes from the settings
RECHECK_S = 10.0  # a disabled user or an ended session stops working within this long, even mid-fragment


def client_address(peer: str | None, headers: Mapping[str, str], trusted: Sequence[str]) -> str:
    """The browser's address for the per-address sign-in limit: the connection's own peer, unless that peer is
    one of the trusted reverse proxies, which say who is behind them in X-Real-IP (or the last hop of
    X-Forwarded-For). Anyone else sending those headers is ignored: they cannot pick a fresh address per try."""
    if not peer:
        return "unknown"
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(ip in ipaddress.ip_network(net, strict=False) for net in trusted):
        return peer
    lower = {k.lower(): v for k, v in headers.items()}
    told = lower.get("x-real-ip") or lower.get("x-forwarded-for", "").split(",")[-1]
    return told.strip()[:64] or peer


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
    st.session_state[TOKEN] = session.token
    return shell.accounts().principal(session.token, time.time_ns())


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
    principal = shell.accounts().principal(ss.get(TOKEN), time.time_ns()) or _single_sign_on()
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
            st.session_state[TOKEN] = session.token
            st.rerun()
    if shell.settings().dashboard.oidc and st.button(v.t("auth.sso"), key="signin_sso"):
        st.login(OIDC_PROVIDER)
    st.caption(v.t("auth.help"))


def sign_out() -> None:
    token = st.session_state.pop(TOKEN, None)
    if token:
        shell.accounts().logout(token)
    st.session_state.pop("principal", None)
    st.session_state["auth_message"] = "auth.signed_out"
    if getattr(st.user, "is_logged_in", False):
        st.logout()
    st.rerun()
