"""The 预警 page's backtest: an adviser tries a rule setting over the last days of stored history and sees
what it would have raised against what was raised, before anyone changes site.toml.

The dashboard does not import the analytics service (the layering forbids it): it runs the same command an
operator would, `orchard analytics replay --json`, as a child process with the dashboard's own settings (its
ORCHARD_* environment), reading its progress from stderr and its report from stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import streamlit as st

from dashboard.shell import View
from orchard.site import Site


def _orchard(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


@st.cache_data(ttl=3600, show_spinner=False)
def rule_settings() -> dict[str, Any]:
    """The plot rules and their settings (`orchard analytics rules --json`)."""
    done = subprocess.run(_orchard("analytics", "rules", "--json"), capture_output=True, timeout=120,
                          env=os.environ.copy(), check=False)
    if done.returncode != 0:
        return {}
    rules: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return {k: r for k, r in rules.items() if r.get("plot_rule")}


def run(setting: str, days: int, rule: str, now: datetime) -> tuple[dict[str, Any] | None, str]:
    """(the report, '') or (None, what went wrong in the command's own words)."""
    start = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")
    args = _orchard("analytics", "replay", "--from", start, "--to", now.strftime("%Y-%m-%dT%H:%M"), "--rule", rule,
                    "--step-min", "15", "--json", *(["--set", setting] if setting else []))
    bar = st.progress(0.0)
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=os.environ.copy()) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        errors: list[str] = []
        for line in proc.stderr:  # "replay 35% (120/340 cycles)"
            if line.startswith("replay ") and "%" in line:
                bar.progress(min(1.0, int(line.split()[1].rstrip("%")) / 100))
            else:
                errors.append(line.strip())
        out = proc.stdout.read()
        code = proc.wait()  # stderr has ended: so has the replay (bounded by the at most 30 days asked for)
    bar.empty()
    if code != 0:
        return None, " ".join(e for e in errors if e)[-400:]
    return orjson.loads(out.strip().splitlines()[-1]), ""


def show(site: Site, v: View, now: datetime) -> None:
    st.caption(v.t("alarms.bt_intro"))
    rules = rule_settings()
    if not rules:
        st.warning(v.t("alarms.bt_unavailable"))
        return
    c1, c2 = st.columns(2)
    rule = c1.selectbox(v.t("alarms.bt_rule"), sorted(rules), placeholder=v.t("common.choose"), key="bt_rule",
                        format_func=lambda r: v.t(f"alarm.{r}"))
    fields = {k: f for k, f in rules[rule]["settings"].items() if k != "enabled"}
    param = c2.selectbox(v.t("alarms.bt_param"), sorted(fields), placeholder=v.t("common.choose"), key="bt_param")
    info = fields[param]
    current = info["site"] if info["site"] is not None else info["default"]
    st.caption(f"{info['description']} · {v.t('alarms.bt_current', value=current)}")
    c3, c4, c5 = st.columns(3)
    value = c3.text_input(v.t("alarms.bt_value"), value=str(current), key="bt_value")
    plot = c4.selectbox(v.t("alarms.bt_plot"), ["", *[p.id for p in site.plots]],
                        placeholder=v.t("common.choose"), key="bt_plot",
                        format_func=lambda p: site.plot_label(p, v.lang) if p else v.t("alarms.bt_all_plots"))
    days = c5.number_input(v.t("alarms.bt_days"), min_value=1, max_value=30, value=7, key="bt_days")
    if not st.button(v.t("alarms.bt_go"), key="bt_go"):
        return
    key = f"{rule}.plots.{plot}.{param}" if plot else f"{rule}.{param}"
    setting = "" if value.strip() == str(current) and not plot else f"{key}={value.strip()}"
    with st.spinner(v.t("alarms.bt_running")):
        report, error = run(setting, int(days), rule, now)
    if report is None:
        st.error(v.t("alarms.bt_failed", error=error))
        return
    m = st.columns(5)
    for col, k in zip(m, ("was", "would", "new", "gone", "moved"), strict=True):
        col.metric(v.t(f"alarms.bt_{k}"), report[k])
    rows = []
    for d in report["differences"]:
        e = d["would"] or d["was"]
        rows.append({v.t("alarms.bt_change"): v.t(f"alarms.bt_{d['change']}"),
                     v.t("alarms.plots"): site.plot_label(e["plot"], v.lang) if e["plot"] else e["source"],
                     v.t("alarms.bt_raised"): e["raised"], v.t("alarms.bt_cleared"): e["cleared"],
                     v.t("alarms.bt_severity"): v.t(f"alarm.severity_{e['severity']}"),
                     v.t("alarms.bt_then"): d["was"]["raised"] if d["was"] and d["would"] else ""})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    else:
        st.info(v.t("alarms.bt_nothing"))
    st.caption(v.t("alarms.bt_not_replayed"))
