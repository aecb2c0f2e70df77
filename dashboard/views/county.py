"""县域总览: the county's view for county and town staff. The villages of their tier on a map coloured by their
red/yellow/green state (drawn offline from the villages' plot outlines), per town and village the open alarms,
the median time to first read, to ack and to close, the notice read rate and the work-order closure, a ranking of
who needs attention first, and each village's command center one click away (orchard/records/tally.py counts)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, shell, signin
from orchard.records.tally import Figures, ranking

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "county", "title": "nav.county", "icon": "🗺️", "order": 2, "roles": ["county", "town"]}

ICON = {"red": "🔴", "yellow": "🟡", "green": "🟢"}
v = shell.view()
me = signin.who("county", "town")
county = shell.county()
days = st.segmented_control(v.t("county.period"), [7, 30, 90], default=30, key="county_days",
                            format_func=lambda d: v.t("county.days", n=d)) or 30
villages, towns = data.county_figures(me, days)

st.title(v.t("county.title"))
if not villages:
    st.info(v.t("county.none"))
    st.stop()


def name(f: Figures) -> str:
    if f.village:
        site = county.sites[f.village].site
        return site.name if v.lang == "zh" else (site.name_en or f.village)
    town = county.town(f.town)
    return (town.name if v.lang == "zh" else (town.name_en or town.id)) if town else f.town


def minutes(x: float | None) -> str:
    return "—" if x is None else v.t("county.min", n=round(x))


def pct(x: float | None) -> str:
    return "—" if x is None else f"{round(100 * x)}%"


def row(f: Figures) -> dict[str, object]:
    out: dict[str, object] = {
        v.t("county.col_place"): f"{ICON[f.state]} {name(f)}",
        v.t("county.col_open"): f.open_alarms, v.t("county.col_unacked"): f.unacked,
        v.t("county.col_read"): minutes(f.read_min), v.t("county.col_ack"): minutes(f.ack_min),
        v.t("county.col_clear"): minutes(f.clear_min), v.t("county.col_notices"): pct(f.read_rate),
        v.t("county.col_orders"): pct(f.closure_rate), v.t("county.col_overdue"): f.overdue}
    if f.village:
        out[v.t("county.col_link")] = county.entry(f.village).url or None
    return out


counts = {s: sum(f.state == s for f in villages) for s in ICON}
cols = st.columns(4)
cols[0].metric(v.t("county.villages"), len(villages))
for col, state in zip(cols[1:], ICON, strict=True):
    col.metric(v.t(f"county.state_{state}"), counts[state])

hover = {f.village: f"{name(f)}: {v.t(f'county.state_{f.state}')}, {v.t('county.col_open')} {f.open_alarms}"
         for f in villages}
st.plotly_chart(charts.county_map(county, [f.village for f in villages], {f.village: f.state for f in villages},
                                  hover, v.lang, v.kiosk), use_container_width=True, key="county_map")

st.subheader(v.t("county.ranking"))
st.caption(v.t("county.ranking_help"))
link = st.column_config.LinkColumn(v.t("county.col_link"), display_text=v.t("county.open"))
st.dataframe(pd.DataFrame([row(f) for f in ranking(villages)]), hide_index=True, use_container_width=True,
             column_config={v.t("county.col_link"): link}, key="county_ranking")

if len(towns) > 1 or me.role == "county":
    st.subheader(v.t("county.towns"))
    st.dataframe(pd.DataFrame([row(t) for t in towns]), hide_index=True, use_container_width=True,
                 key="county_towns")
