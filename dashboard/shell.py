"""What every page needs, built once per server process: settings, site, store, records; and per run:
the language and kiosk mode from the URL. Nothing here connects at import time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import streamlit as st

from orchard import i18n
from orchard.access import Principal
from orchard.county import County, county_for
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.redact import hide
from orchard.settings import Settings, secret_values
from orchard.site import Site, site_for
from orchard.store import TimeSeriesStore, open_store


@st.cache_resource
def settings() -> Settings:
    loaded = Settings()
    hide(*secret_values(loaded))
    return loaded


@st.cache_resource
def site() -> Site:
    return site_for(settings())


@st.cache_resource
def county() -> County:
    """The deployment's county (ORCHARD_COUNTY_FILE, or this village as a county of one): notices and tiers."""
    return county_for(settings(), site())


@st.cache_resource
def store() -> TimeSeriesStore:
    return open_store(settings().store_url, site=settings().site)


@st.cache_resource
def records() -> Records:
    return Records.village(settings())


@st.cache_resource
def accounts() -> Accounts:
    return Accounts(records(), settings().dashboard)


def visible_site(who: Principal) -> Site:
    """The site as this principal may see it: only their plots, and the devices and cameras on them (grading
    lines are site-wide; a farmer sees their own lots on the grading page, not the line). Pages draw maps and
    choices from this, and the data functions check again."""
    return site() if who.plots is None else _restricted(who.plots, who.role != "farmer")


@st.cache_resource(max_entries=256)
def _restricted(plots: tuple[str, ...], lines: bool) -> Site:
    return site().restricted(plots, lines)


plain = i18n.plain  # people's own words for st.markdown, shown as typed


@dataclass(frozen=True, slots=True)
class View:
    """Per-run choices: language and kiosk mode, from the URL (?lang=en, ?kiosk=1) or the sidebar."""

    lang: str
    kiosk: bool

    def t(self, key: str, **params: Any) -> str:
        return i18n.t(key, self.lang, **params)

    def fmt_time(self, time_ns: int | None, with_date: bool = True) -> str:
        if time_ns is None:
            return "—"
        d = datetime.fromtimestamp(time_ns / 1e9, site().tz)
        return d.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")

    def age(self, time_ns: int | None, now_ns: int) -> str:
        """'3 分钟前' / '3 min ago'."""
        if time_ns is None:
            return self.t("common.never")
        s = max(0, (now_ns - time_ns) // 1_000_000_000)
        if s < 90:
            return self.t("common.age_s", n=s)
        if s < 90 * 60:
            return self.t("common.age_min", n=s // 60)
        if s < 48 * 3600:
            return self.t("common.age_h", n=s // 3600)
        return self.t("common.age_d", n=s // 86400)


def view() -> View:
    """The URL wins; the session remembers it across page switches (which may drop query parameters)."""
    qp, ss = st.query_params, st.session_state
    lang = i18n.normalise(qp.get("lang") or ss.get("lang"))
    kiosk_param = qp.get("kiosk")
    # "?kiosk=1" or a signed kiosk link (dashboard/signin.py decides whether the link is good)
    kiosk = (kiosk_param.lower() not in ("", "0", "false", "no") if kiosk_param is not None
             else bool(ss.get("kiosk", False)))
    ss["lang"], ss["kiosk"] = lang, kiosk
    if qp.get("lang") != lang:
        qp["lang"] = lang
    return View(lang, kiosk)
