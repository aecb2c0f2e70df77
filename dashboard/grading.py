"""The grading line for the 分选线 page, the printable lot report and the command center's panel: the line's state
from the grading service's per-minute heartbeat, and the charts of a lot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts, data, shell
from dashboard.shell import View
from orchard.access import Principal
from orchard.models import GRADES, REJECT_REASONS
from orchard.records.lots import Lot
from orchard.site import LineConfig

NS = 1_000_000_000
MINUTE_NS = 60 * NS
State = Literal["running", "idle", "offline"]
BADGE = {"running": "🟢", "idle": "🟡", "offline": "🔴"}
COLOURS = {"extra": "#2e7d32", "class1": "#7cb342", "class2": "#fbc02d", "reject": "#e53935"}
SILENT_MIN = 3  # minutes without a heartbeat: the grading service is not running (it reports every minute)


@dataclass(frozen=True, slots=True)
class LineView:
    line: LineConfig
    state: State
    lot: Lot | None
    per_min: float  # fruit graded in the last full minute
    per_min_10: float  # mean over the last ten minutes
    reject_pct_10: float | None  # reject rate over the last ten minutes (None: nothing graded)
    today: int  # fruit graded today
    last_report_ns: int | None
    minutes: pd.DataFrame  # today's minutes (data.line_minutes)


def line_view(who: Principal, line: LineConfig, now_ns: int) -> LineView:
    """The line as the principal may see it: someone with only some plots sees only their lots' minutes."""
    site = shell.site()
    midnight = pd.Timestamp(now_ns, unit="ns", tz="UTC").tz_convert(site.tz).normalize()
    start = min(int(midnight.value), now_ns - 3600 * NS)  # at least the last hour, even just after midnight
    minute = now_ns - now_ns % MINUTE_NS
    df = data.line_minutes(who, line.id, start, minute + MINUTE_NS)
    lot = data.open_lot(who, line.id)
    last = int(df["time_ns"].max()) if not df.empty else None
    done = df[df["time_ns"] < minute]  # the minute under way is not reported yet
    prev = done[done["time_ns"] == minute - MINUTE_NS]
    recent = done[done["time_ns"] >= minute - 10 * MINUTE_NS]
    fruit10 = int(recent["fruit"].sum()) if not recent.empty else 0
    per_min = float(prev["fruit"].sum()) if not prev.empty else 0.0
    if last is None or now_ns - last > (SILENT_MIN + 1) * MINUTE_NS:
        state: State = "offline"
    else:
        state = "running" if per_min > 0 or (not recent.empty and recent["fruit"].tail(2).sum() > 0) else "idle"
    today = int(df.loc[df["time_ns"] >= midnight.value, "fruit"].sum()) if not df.empty else 0
    return LineView(line, state, lot, per_min, fruit10 / 10, 100 * float(recent["reject"].sum()) / fruit10
                    if fruit10 else None, today, last, df)


def throughput_chart(df: pd.DataFrame, v: View, height: int = 220) -> go.Figure:
    fig = go.Figure()
    if not df.empty:
        times = charts.wall_clock(df["time"])
        for g in GRADES:
            fig.add_bar(x=times, y=df[g].to_numpy(), name=v.t(f"grade.{g}"), marker_color=COLOURS[g])
    fig.update_layout(barmode="stack", height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h"}, yaxis={"title": v.t("grade.per_min_axis")}, bargap=0.05)
    return fig


def class_mix_chart(lot: Lot, v: View, height: int = 240) -> go.Figure:
    counts = lot.by_grade()
    fig = go.Figure(go.Pie(labels=[v.t(f"grade.{g}") for g in GRADES], values=[counts.get(g, 0) for g in GRADES],
                           marker={"colors": [COLOURS[g] for g in GRADES]}, hole=0.45, sort=False))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"})
    return fig


def size_chart(lot: Lot, v: View, height: int = 240) -> go.Figure:
    sizes = lot.by_size()
    labels = [v.t("grade.size_label", size=s) if s.isdigit() else v.t("grade.size_none") for s in sizes]
    fig = go.Figure(go.Bar(x=labels, y=list(sizes.values()), marker_color="#8d6e63"))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      yaxis={"title": v.t("grade.fruit_axis")})
    return fig


def reasons_chart(lot: Lot, v: View, height: int = 240) -> go.Figure:
    keys = [r for r in REJECT_REASONS if lot.reasons.get(r)] or list(REJECT_REASONS)
    fig = go.Figure(go.Bar(x=[lot.reasons.get(r, 0) for r in keys], y=[v.t(f"grade.reason_{r}") for r in keys],
                           orientation="h", marker_color=COLOURS["reject"]))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"title": v.t("grade.fruit_axis")})
    return fig


def lot_charts(lot: Lot, v: View, key: str, static: bool = False) -> None:
    """The lot's class mix, count sizes and reject reasons side by side (static: for the printed report)."""
    config = {"displayModeBar": False, "staticPlot": static}
    charts_ = (("grade.class_mix", class_mix_chart(lot, v)), ("grade.sizes", size_chart(lot, v)),
               ("grade.reasons", reasons_chart(lot, v)))
    for col, (title, fig) in zip(st.columns(len(charts_)), charts_, strict=True):
        with col:
            st.markdown(f"**{v.t(title)}**")
            st.plotly_chart(fig, config=config, key=f"{key}_{title.split('.')[1]}")


def lot_table(lot: Lot, v: View) -> pd.DataFrame:
    """Class by count size: the body of the lot report."""
    sizes = lot.sizes()
    rows = []
    for g in GRADES:
        row: dict[str, object] = {v.t("grade.class"): v.t(f"grade.{g}")}
        for s in sizes:
            head = v.t("grade.size_label", size=s) if s.isdigit() else v.t("grade.size_none")
            row[head] = int(lot.counts.get(f"{g}:{s}", 0))
        row[v.t("grade.total")] = lot.by_grade().get(g, 0)
        row["%"] = round(lot.share_pct(g), 1)
        rows.append(row)
    return pd.DataFrame(rows)
