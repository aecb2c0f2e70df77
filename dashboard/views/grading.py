"""分选线: the grading line live (throughput, class mix, sizes, reject reasons, the last annotated frame), the
open lot started and ended here, the lot history with each lot's report, and each plot's quality by season."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data, grading, shell, signin
from orchard.access import Forbidden
from orchard.records.lots import LotError
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "grading", "title": "nav.grading", "icon": "🥝", "order": 40,
       "roles": ["center", "adviser", "farmer", "kiosk"]}

v = shell.view()
me = signin.who("center", "adviser", "farmer", "kiosk")
site = shell.visible_site(me)  # a farmer has no line here, only their own lots
settings = shell.settings()
cfg = settings.dashboard
OPERATORS = ("center", "adviser")  # who may start and end lots at the line

st.title(v.t("grade.title"))
if not site.lines and me.role != "farmer":
    st.info(v.t("grade.no_lines"))
    st.stop()
line = site.lines[0] if site.lines else None
if len(site.lines) > 1:
    ids = [x.id for x in site.lines]
    line = site.line(st.selectbox(v.t("grade.line"), ids, placeholder=v.t("common.choose"), key="grade_line",
                                  format_func=lambda i: site.line(i).label()))


@st.fragment(run_every=cfg.refresh_s)
def live() -> None:
    signin.still(me)  # the page's check does not run again with the fragment
    assert line is not None
    now = data.now_ns()
    try:
        lv = grading.line_view(me, line, now)
    except StoreError as e:
        st.error(v.t("common.store_down", error=str(e)[:200]))
        return
    state = v.t(f"grade.state_{lv.state}")
    st.markdown(f"{grading.BADGE[lv.state]} **{line.label()}** · {state} · "
                f"{v.t('grade.last_report', age=v.age(lv.last_report_ns, now))}")
    k = st.columns(5)
    k[0].metric(v.t("grade.kpi_per_min"), f"{lv.per_min:.0f}",
                delta=v.t("grade.kpi_per_min_10", n=f"{lv.per_min_10:.0f}"), delta_color="off")
    k[1].metric(v.t("grade.kpi_today"), f"{lv.today:,}")
    k[2].metric(v.t("grade.kpi_reject_10"), "—" if lv.reject_pct_10 is None else f"{lv.reject_pct_10:.1f}%")
    lot = lv.lot
    if lot is not None:
        k[3].metric(v.t("grade.kpi_lot"), f"#{lot.id} · {lot.fruit:,}",
                    delta=lot.grower if me.personal_data else None, delta_color="off")
        k[4].metric(v.t("grade.kpi_packout"), f"{lot.packout_pct:.1f}%",
                    delta=v.t("grade.mean_weight", g=f"{lot.mean_weight_g:.1f}"), delta_color="off")
    else:
        k[3].metric(v.t("grade.kpi_lot"), "—")
        k[4].metric(v.t("grade.kpi_packout"), "—")
        st.info(v.t("grade.no_open_lot"))

    left, right = st.columns([3, 2])
    with left:
        st.subheader(v.t("grade.throughput"))
        recent = lv.minutes[lv.minutes["time_ns"] >= now - 2 * 3600 * 1_000_000_000]
        st.plotly_chart(grading.throughput_chart(recent, v), config={"displayModeBar": False}, key="grade_tp")
    with right:
        st.subheader(v.t("grade.frame"))
        path = settings.line_frame(line.id)
        try:
            jpeg, taken = path.read_bytes(), path.stat().st_mtime_ns
        except OSError:
            st.caption(v.t("grade.no_frame"))
        else:
            st.image(jpeg, caption=v.t("grade.frame_age", age=v.age(taken, now)), output_format="JPEG")
    if lot is not None and lot.fruit:
        st.subheader(v.t("grade.lot_head", id=lot.id, grower=lot.grower if me.personal_data else "",
                         plot=site.plot_label(lot.plot, v.lang)))
        grading.lot_charts(lot, v, "grade")


def done(message: str) -> None:
    """Show what happened after the rerun that shows its effect."""
    data.clear()
    st.session_state["grade_flash"] = message
    st.rerun()


def lot_controls() -> None:
    assert line is not None
    me.require(act=True)
    if flash := st.session_state.pop("grade_flash", None):
        st.success(flash)
    lot = data.open_lot(me, line.id)
    if lot is not None:
        st.markdown(v.t("grade.open_since", id=lot.id, grower=shell.plain(lot.grower),
                        plot=site.plot_label(lot.plot, v.lang), time=v.fmt_time(lot.started_ns)))
        if st.button(v.t("grade.end", id=lot.id), key="grade_end", type="primary"):
            try:
                ended = data.lots().end(lot.id, me.name, data.now_ns())
            except LotError as e:
                st.error(str(e))
            else:
                done(v.t("grade.ended", id=ended.id, fruit=ended.fruit, packout=f"{ended.packout_pct:.1f}"))
        return
    with st.form("grade_start"):
        plot = st.selectbox(v.t("grade.plot"), [p.id for p in site.plots],
                            placeholder=v.t("common.choose"), key="grade_plot",
                            format_func=lambda p: f"{site.plot_label(p, v.lang)} · {site.plot_by_id[p].owner}")
        grower = st.text_input(v.t("grade.grower"), key="grade_grower", max_chars=80,
                               placeholder=v.t("grade.grower_default"))
        note = st.text_input(v.t("grade.note"), key="grade_note", max_chars=200)
        if st.form_submit_button(v.t("grade.start"), type="primary"):
            try:
                me.check(plot)
                started = data.lots().start(line.id, plot, me.name, grower, note, data.now_ns())
            except LotError as e:
                st.error(str(e))
            except Forbidden as e:
                st.error(v.t(e.key))
            else:
                done(v.t("grade.started", id=started.id, grower=started.grower))


def history() -> None:
    lots = data.lot_history(me)
    if not lots:
        st.caption(v.t("grade.no_lots"))
        return
    rows = [{"#": x.id, **({v.t("grade.grower"): x.grower} if me.personal_data else {}),
             v.t("grade.plot"): site.plot_label(x.plot, v.lang),
             v.t("grade.started_at"): v.fmt_time(x.started_ns),
             v.t("grade.ended_at"): v.fmt_time(x.ended_ns) if x.ended_ns else v.t("grade.open"),
             v.t("grade.fruit"): x.fruit, v.t("grade.weight_kg"): round(x.weight_g / 1000, 1),
             v.t("grade.mean_weight_col"): round(x.mean_weight_g, 1), v.t("grade.packout_col"): round(x.packout_pct, 1),
             v.t("grade.extra_col"): round(x.share_pct("extra"), 1),
             **({v.t("grade.report"): f"./lot?lot={x.id}&lang={v.lang}"} if me.can_act else {})} for x in lots]
    link = st.column_config.LinkColumn(display_text=v.t("grade.open_report"))
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True,
                 column_config={v.t("grade.report"): link})


def seasons() -> None:
    quality = data.season_quality(me)
    if not quality:
        st.caption(v.t("grade.no_lots"))
        return
    fig = go.Figure()
    for plot in sorted({q.plot for q in quality}):
        mine = [q for q in quality if q.plot == plot]
        fig.add_scatter(x=[str(q.season) for q in mine], y=[q.packout_pct for q in mine],
                        name=site.plot_label(plot, v.lang), mode="lines+markers")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"},
                      yaxis={"title": v.t("grade.packout_col")}, xaxis={"type": "category"})
    st.plotly_chart(fig, config={"displayModeBar": False}, key="grade_seasons")
    st.dataframe(pd.DataFrame([{
        v.t("grade.plot"): site.plot_label(q.plot, v.lang), v.t("grade.season"): q.season, v.t("grade.lots"): q.lots,
        v.t("grade.fruit"): q.fruit, v.t("grade.weight_kg"): round(q.weight_kg, 1),
        v.t("grade.mean_weight_col"): round(q.mean_weight_g, 1), v.t("grade.packout_col"): round(q.packout_pct, 1),
        **{v.t(f"grade.{g}") + " %": round(q.share_pct[g], 1) for g in q.share_pct}} for q in quality]),
        hide_index=True, use_container_width=True)


if line is not None:
    live_tab, lots_tab, seasons_tab = st.tabs([v.t("grade.tab_live"), v.t("grade.tab_lots"),
                                               v.t("grade.tab_seasons")])
    with live_tab:
        live()
        if me.role in OPERATORS and not v.kiosk:
            st.subheader(v.t("grade.lot_control"))
            lot_controls()
else:
    lots_tab, seasons_tab = st.tabs([v.t("grade.tab_lots"), v.t("grade.tab_seasons")])
with lots_tab:
    history()
with seasons_tab:
    seasons()
st.caption(v.t("grade.updated", time=datetime.now(site.tz).strftime("%H:%M:%S")))
