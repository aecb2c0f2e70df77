"""Plotly figures: the offline plot map, the 24-hour strip, and time-series lines with min/max bands.

Pure functions of data frames, so they are cheap to test and never query anything themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from dashboard.risk import COLOURS, Risk
from orchard.catalogue import CATALOGUE
from orchard.county import County
from orchard.site import Site, local_xy

SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#7f7f7f", "#393b79", "#ad494a"]


@cache
def template(dark: bool) -> go.layout.Template:
    """plotly's dark or white look, layout only: the full templates carry defaults for every trace type, and
    copying those into each figure cost more than drawing the command center's charts."""
    return go.layout.Template(layout=pio.templates["plotly_dark" if dark else "plotly_white"].layout)


def reading_label(field: str, lang: str) -> str:
    spec = CATALOGUE.get(field)
    if spec is None:
        return field
    return f"{spec.zh if lang == 'zh' else spec.en} ({spec.unit})"


def plot_map(site: Site, risks: Mapping[str, Risk], hover: Mapping[str, str], lang: str, dark: bool,
             height: int = 520) -> go.Figure:
    """Plots as filled outlines coloured by risk code, in metres on a local grid: no map tiles, works offline."""
    xy = local_xy(site)
    fig = go.Figure()
    for plot in site.plots:
        pts = xy[plot.id]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        level = risks.get(plot.id, Risk("unknown")).level
        colour = COLOURS[level]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, fill="toself", mode="lines", line={"color": colour, "width": 2},
            fillcolor=colour, opacity=0.55, name=plot.label(lang), hoveron="fills+points",
            text=hover.get(plot.id, plot.label(lang)), hoverinfo="text", showlegend=False,
        ))
        fig.add_trace(go.Scatter(
            x=[float(np.mean(xs[:-1] if len(xs) > 3 else xs))], y=[float(np.mean(ys[:-1] if len(ys) > 3 else ys))],
            mode="text", text=[plot.label(lang)], textfont={"size": 14 if dark else 12},
            hoverinfo="skip", showlegend=False,
        ))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(template=template(dark), height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      hoverlabel={"font_size": 16 if dark else 13}, paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="rgba(0,0,0,0)")
    return fig


def county_map(county: County, villages: Sequence[str], states: Mapping[str, str], hover: Mapping[str, str],
               lang: str, dark: bool, height: int = 520) -> go.Figure:
    """The villages as filled outlines (the hull of each one's plots) coloured red/yellow/green, in kilometres on a
    county-local grid: no map tiles, works offline."""
    rings = {v: county.outline(v) for v in villages}
    lats = [y for r in rings.values() for _, y in r]
    lons = [x for r in rings.values() for x, _ in r]
    lat0, lon0 = (min(lats), min(lons)) if lats else (0.0, 0.0)
    kx = 111.32 * math.cos(math.radians(sum(lats) / len(lats))) if lats else 111.32
    fig = go.Figure()
    for v in villages:
        xs = [(x - lon0) * kx for x, _ in rings[v]]
        ys = [(y - lat0) * 110.574 for _, y in rings[v]]
        site = county.sites[v].site
        label = site.name if lang == "zh" else (site.name_en or v)
        colour = COLOURS.get(states.get(v, "unknown"), COLOURS["unknown"])
        fig.add_trace(go.Scatter(x=xs, y=ys, fill="toself", mode="lines", line={"color": colour, "width": 2},
                                 fillcolor=colour, opacity=0.55, name=label, hoveron="fills+points",
                                 text=hover.get(v, label), hoverinfo="text", showlegend=False))
        fig.add_trace(go.Scatter(x=[float(np.mean(xs[:-1]))], y=[float(np.mean(ys[:-1]))], mode="text",
                                 text=[label], hoverinfo="skip", showlegend=False))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(template=template(dark), height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig


HEAT_SCALES = {"air_temp_c": "RdBu_r", "rh_pct": "Blues", "leaf_wetness_pct": "Greens", "soil_vwc_pct": "YlGnBu"}


def strip(df: pd.DataFrame, field: str, site: Site, lang: str, dark: bool, height: int = 260) -> go.Figure:
    """Plots x hours heat strip of one reading's hourly means; empty hours stay empty (gaps are visible)."""
    sub = df[df["field"] == field]
    order = [p.id for p in site.plots]
    fig = go.Figure()
    if not sub.empty:
        table = sub.pivot_table(index="plot", columns="time", values="value", aggfunc="mean")
        table = table.reindex([p for p in order if p in table.index] + [p for p in table.index if p not in order])
        fig.add_trace(go.Heatmap(
            z=table.to_numpy(), x=wall_clock(table.columns), y=[site.plot_label(p, lang) for p in table.index],
            colorscale=HEAT_SCALES.get(field, "Viridis"), colorbar={"thickness": 10},
            hovertemplate="%{y}<br>%{x|%H:%M}<br>%{z:.1f}<extra></extra>", hoverongaps=False,
        ))
    fig.update_layout(template=template(dark), height=height, title={"text": reading_label(field, lang),
                                                                    "font": {"size": 18 if dark else 14}},
                      margin={"l": 0, "r": 0, "t": 36, "b": 0}, paper_bgcolor="rgba(0,0,0,0)")
    fig.update_xaxes(tickformat="%H:%M")
    return fig


def wall_clock(times: pd.Series | pd.Index) -> np.ndarray:
    """Times as naive datetime64 in their own zone: plotly draws these as they read, and numpy arrays are copied
    by value (a list of Timestamps costs plotly ~40x more to validate and serialise)."""
    idx = pd.DatetimeIndex(times)
    return (idx.tz_localize(None) if idx.tz is not None else idx).to_numpy()


def with_gaps(times: pd.Series, values: pd.Series, max_step: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock times and values, with a break (NaN at the midpoint) wherever consecutive points are further
    apart than max_step, so a line never bridges missing data."""
    xs, ys = wall_clock(times), values.to_numpy(dtype=float)
    if len(xs) < 2:
        return xs, ys
    steps = np.diff(xs)
    breaks = np.flatnonzero(steps > max_step.to_timedelta64())
    return np.insert(xs, breaks + 1, xs[breaks] + steps[breaks] / 2), np.insert(ys, breaks + 1, np.nan)


def lines(df: pd.DataFrame, field: str, key_cols: list[str], labels: Mapping[tuple[Any, ...], str],
          max_step: pd.Timedelta, lang: str, dark: bool, bands: bool, height: int = 380) -> go.Figure:
    """One line per series key (device and depth, or plot), with a min/max band when aggregated."""
    sub = df[df["field"] == field]
    fig = go.Figure()
    for i, (key, g) in enumerate(sub.groupby(key_cols, sort=True)):
        k = key if isinstance(key, tuple) else (key,)
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        name = labels.get(k, " / ".join(str(x) for x in k if x))
        if bands and g["min"].notna().any():
            xs, hi = with_gaps(g["time"], g["max"], max_step)
            _, lo = with_gaps(g["time"], g["min"], max_step)
            fig.add_trace(go.Scatter(x=xs, y=hi, mode="lines", line={"width": 0}, hoverinfo="skip",
                                     showlegend=False, legendgroup=name, connectgaps=False))
            fig.add_trace(go.Scatter(x=xs, y=lo, mode="lines", line={"width": 0}, fill="tonexty",
                                     fillcolor=_alpha(colour, 0.18), hoverinfo="skip", showlegend=False,
                                     legendgroup=name, connectgaps=False))
        xs, ys = with_gaps(g["time"], g["value"], max_step)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, line={"color": colour, "width": 2},
                                 legendgroup=name, connectgaps=False,
                                 hovertemplate=f"{name}<br>%{{x|%m-%d %H:%M}}<br>%{{y:.2f}}<extra></extra>"))
    fig.update_layout(template=template(dark), height=height, title=reading_label(field, lang),
                      margin={"l": 0, "r": 0, "t": 40, "b": 0}, legend={"orientation": "h", "y": -0.15},
                      hovermode="x unified")
    return fig


def _alpha(hex_colour: str, a: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"
