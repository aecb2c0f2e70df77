"""指挥中心: the village wall screen. Live part in a fragment that reruns itself every refresh_s seconds."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboard import cameras, charts, data, grading, shell, signin
from dashboard.risk import LEVELS, Risk, plot_risk
from orchard.catalogue import CATALOGUE
from orchard.grouping import group_alarms
from orchard.records.alarms import alarm_text
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "command-center", "title": "nav.command_center", "icon": "🛰️", "order": 10,
       "roles": ["center", "adviser", "farmer", "kiosk"]}

v = shell.view()
me = signin.who("center", "adviser", "farmer", "kiosk")
site = shell.visible_site(me)  # a farmer's command center is their own plots
cfg = shell.settings().dashboard
WALL = 6  # camera tiles on the wall; troubled cameras first
ICONS = {"critical": "🔴", "major": "🟠", "warning": "🟡", "info": "🔵"}


def hover_text(plot_id: str, readings: dict[str, float], risk: Risk, newest_ns: int | None) -> str:
    p = site.plot_by_id[plot_id]
    variety = v.t(f"variety.{p.variety}")
    lines = [f"<b>{p.label(v.lang)}</b>",
             v.t("cc.hover_owner", owner=p.owner, variety=variety, area=p.area_mu) if me.personal_data
             else v.t("cc.hover_plot", variety=variety, area=p.area_mu)]
    for f in ("air_temp_c", "rh_pct", "leaf_wetness_pct", "soil_vwc_pct", "wind_gust_ms"):
        if f in readings:
            spec = CATALOGUE[f]
            lines.append(f"{spec.zh if v.lang == 'zh' else spec.en}: {readings[f]:.1f} {spec.unit}")
    lines.append(v.t("cc.hover_updated", time=v.fmt_time(newest_ns)))
    lines += [f"⚠ {alarm_text(a, v.lang, site).title}" for a in risk.alarms]
    if risk.level == "unknown":
        lines.append(f"⚠ {v.t('risk.no_data')}")
    return "<br>".join(lines)


def grading_panel(lv: grading.LineView, now: int) -> None:
    """One grading line in a row: its state and speed, the open lot, its pack-out and today's count."""
    k = st.columns([2, 3, 2, 2])
    k[0].metric(f"{grading.BADGE[lv.state]} {lv.line.label()}", v.t("cc.grading_per_min", n=f"{lv.per_min:.0f}"),
                delta=v.t(f"grade.state_{lv.state}"), delta_color="off")
    lot = lv.lot
    grower = lot.grower if lot and me.personal_data else ""
    k[1].metric(v.t("grade.kpi_lot"), f"#{lot.id} {grower}" if lot else "—",
                delta=site.plot_label(lot.plot, v.lang) if lot else v.t("grade.no_open_lot_short"), delta_color="off")
    k[2].metric(v.t("grade.kpi_packout"), f"{lot.packout_pct:.1f}%" if lot and lot.fruit else "—",
                delta=v.t("grade.kpi_reject_10_short", pct=f"{lv.reject_pct_10:.1f}")
                if lv.reject_pct_10 is not None else None, delta_color="off")
    k[3].metric(v.t("grade.kpi_today"), f"{lv.today:,}")


@st.fragment(run_every=cfg.refresh_s)
def live() -> None:
    signin.still(me)  # the page's check does not run again with the fragment
    now = data.now_ns()
    try:
        latest = data.latest(me)
        last24 = data.last_24h(me)
        strip_df = data.hourly_by_plot(me, data.KEY_READINGS)
        active = data.active_alarms(me)
    except StoreError as e:
        st.error(v.t("common.store_down", error=str(e)[:200]))
        return
    readings = data.plot_readings(latest)
    newest_by_plot = latest.groupby("plot")["time_ns"].max().to_dict() if not latest.empty else {}
    risks = {p.id: plot_risk(p.id, active, now - newest_by_plot.get(p.id, 0) <= data.stale_after_ns(plot=p.id))
             for p in site.plots}

    clock = datetime.now(site.tz).strftime("%Y-%m-%d %H:%M:%S")
    st.caption(v.t("cc.updated", time=clock, every=cfg.refresh_s))

    counts = {lvl: sum(1 for r in risks.values() if r.level == lvl) for lvl in LEVELS}
    states = data.presence(data.devices(me), latest, now)
    online = int((states["state"] == "online").sum())
    offline_ids = sorted(states.loc[states["state"] == "offline", "device"])
    offline = len(offline_ids)
    newest = int(latest["time_ns"].max()) if not latest.empty else None
    stale_plots = sum(1 for r in risks.values() if r.level == "unknown")

    k = st.columns(6)
    k[0].metric(v.t("cc.kpi_red"), counts["red"])
    k[1].metric(v.t("cc.kpi_yellow"), counts["yellow"])
    k[2].metric(v.t("cc.kpi_green"), counts["green"],
                help=v.t("cc.kpi_unknown_help", n=counts["unknown"]) if counts["unknown"] else None)
    k[3].metric(v.t("cc.kpi_devices"), f"{online} / {online + offline}",
                delta=v.t("cc.kpi_offline", n=offline) if offline else v.t("cc.kpi_all_online"),
                delta_color="inverse" if offline else "off")
    k[4].metric(v.t("cc.kpi_freshness"), v.age(newest, now),
                delta=v.t("cc.kpi_stale_plots", n=stale_plots) if stale_plots else None,
                delta_color="inverse" if stale_plots else "off")
    if last24.min_temp:
        coldest = min(last24.min_temp, key=lambda p: last24.min_temp[p])
        rain = max(last24.rain.values()) if last24.rain else 0.0
        k[5].metric(v.t("cc.kpi_min_temp"), f"{last24.min_temp[coldest]:.1f} °C",
                    delta=v.t("cc.kpi_rain", plot=site.plot_label(coldest, v.lang), rain=rain), delta_color="off")
    else:
        k[5].metric(v.t("cc.kpi_min_temp"), "—")

    if latest.empty:
        st.info(v.t("cc.no_data"))

    left, right = st.columns([3, 2])
    with left:
        st.subheader(v.t("cc.map"))
        hover = {p: hover_text(p, readings.get(p, {}), risks[p], newest_by_plot.get(p)) for p in site.plot_by_id}
        st.plotly_chart(charts.plot_map(site, risks, hover, v.lang, v.kiosk, height=560 if v.kiosk else 440),
                        config={"displayModeBar": False}, key="cc_map", theme=None if v.kiosk else "streamlit")
        st.caption(" · ".join(f"{icon} {v.t('risk.level_' + lvl)}" for lvl, icon in
                              (("red", "🟥"), ("yellow", "🟨"), ("green", "🟩"), ("unknown", "⬜"))))
    with right:
        st.subheader(v.t("cc.attention"))
        if not active:
            st.success(v.t("cc.all_green"))
        groups = group_alarms(active)  # one rule across many plots at once: one line, the plots listed
        for g in groups[:10]:
            a = g.alarms[0]
            words = alarm_text(a, v.lang, site)
            if len(g) == 1:
                where = site.plot_label(a.plot, v.lang) if a.plot else a.source
                ack = (v.t("cc.unacked") if not a.acked else v.t("cc.acked", who=a.acked_by) if me.personal_data
                       else v.t("cc.acked_anon"))
                st.markdown(f"{ICONS[a.severity]} **{words.title}** · {where} · {v.age(a.started_ns, now)} · {ack}")
                continue
            names = [site.plot_label(p, v.lang) for p in g.plots] or [x.device or x.source for x in g.alarms]
            count = v.t("cc.group_plots", n=len(g.plots)) if g.plots else v.t("cc.group_alarms", n=len(g))
            st.markdown(f"{ICONS[g.severity]} **{words.title} · {count}** · {v.age(g.started_ns, now)} · "
                        f"{v.t('cc.group_unacked', n=len(g.unacked), total=len(g))}  \n"
                        f"{'、'.join(names) if v.lang == 'zh' else ', '.join(names)}")
        if len(groups) > 10:
            st.caption(v.t("cc.more_alarms", n=sum(len(g) for g in groups[10:])))
        unknown = [p for p in site.plots if risks[p.id].level == "unknown"]
        if unknown:
            st.markdown(f"⬜ {v.t('cc.no_data_plots')}: " + ", ".join(p.label(v.lang) for p in unknown))
        if offline_ids:
            st.markdown(f"📡 {v.t('cc.offline_devices')}: " + ", ".join(offline_ids[:12]))

    wall = cameras.views(me)[:WALL]
    if wall:
        st.subheader(v.t("cc.cameras"))
        seen = st.session_state.setdefault("wall_motion_ns", {})  # smart streaming's memory across refreshes
        live = cameras.smart_live(wall, seen, now, cfg.wall_live_max, cfg.wall_live_hold_s)
        for col, cv in zip(st.columns(len(wall)), wall, strict=True):
            with col:
                if cv.cam.id in live:
                    cameras.live_tile(cv, v)
                else:
                    cameras.tile(cv, v, now)

    if site.lines:
        st.subheader(v.t("cc.grading"))
        for line in site.lines:
            grading_panel(grading.line_view(me, line, now), now)

    st.subheader(v.t("cc.strip"))
    cols = st.columns(2)
    for i, field in enumerate(data.KEY_READINGS):
        with cols[i % 2]:
            st.plotly_chart(charts.strip(strip_df, field, site, v.lang, v.kiosk), config={"displayModeBar": False},
                            key=f"cc_strip_{field}", theme=None if v.kiosk else "streamlit")


st.title(f"{v.t('cc.title')} · {site.name(v.lang)}")
live()
