"""视频监控: every camera's latest picture with its age and health, by plot; one camera's full frame and its last
24 hours to scrub through (motion, brightness and intrusions on a timeline)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import cameras, charts, data, shell, signin
from orchard.site import CameraKind
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "cameras", "title": "nav.cameras", "icon": "📹", "order": 30,
       "roles": ["center", "adviser", "farmer", "kiosk"]}

v = shell.view()
me = signin.who("center", "adviser", "farmer", "kiosk")
site = shell.visible_site(me)  # only the cameras on the plots this person may see
cfg = shell.settings().dashboard
PER_PAGE = 12  # thumbnails on screen at once: what the browser and the server hold stays bounded

st.title(v.t("cam.title"))
if not site.cameras:
    st.info(v.t("cam.none"))
    st.stop()

plots = st.multiselect(v.t("cam.plots"), sorted({c.plot for c in site.cameras}),
                       placeholder=v.t("common.choose"), key="cam_plots",
                       format_func=lambda p: site.plot_label(p, v.lang))
chosen = st.session_state.get("cam_chosen") or st.query_params.get("camera")  # a click, or a link ?camera=
by_id = {c.id: c for c in site.cameras}


def timeline(camera: str, start: datetime, end: datetime, at: datetime) -> go.Figure:
    df = data.camera_history(me, camera, int(start.timestamp() * 1e9), int(end.timestamp() * 1e9))
    fig = go.Figure()
    if not df.empty:
        times = charts.wall_clock(df["time"])
        fig.add_scatter(x=times, y=df["motion"].to_numpy(), name=v.t("cam.motion"), mode="lines")
        fig.add_scatter(x=times, y=df["brightness"].to_numpy(), name=v.t("cam.brightness"), mode="lines",
                        yaxis="y2", line={"dash": "dot"})
        hits = df["intrusion"].astype(bool).to_numpy()
        fig.add_scatter(x=times[hits], y=df["motion"].to_numpy()[hits], name=v.t("cam.intrusions"), mode="markers",
                        marker={"size": 11, "color": "red", "symbol": "x"})
        bad = (df["health"] != "ok").to_numpy()
        fig.add_scatter(x=times[bad], y=np.zeros(int(bad.sum())), name=v.t("cam.trouble"), mode="markers",
                        marker={"size": 7, "color": "orange"})
    fig.add_vline(x=np.datetime64(at.replace(tzinfo=None)), line_color="gray")
    fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"},
                      yaxis={"title": "%"}, yaxis2={"overlaying": "y", "side": "right", "range": [0, 255]})
    return fig


def detail(camera: str) -> None:
    cam = by_id[camera]
    now = datetime.now(site.tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = now - timedelta(hours=24)
    st.subheader(f"{cam.label()} · {site.plot_label(cam.plot, v.lang)}")
    if st.button(v.t("cam.back"), key="cam_back"):
        st.session_state["cam_chosen"] = None
        st.query_params.pop("camera", None)
        st.rerun()
    if cam.kind == CameraKind.RTSP:
        st.markdown(f"**{v.t('cam.live_video')}**")
        cameras.live(cam, v)
    at = st.slider(v.t("cam.when"), min_value=start, max_value=now, value=now, step=timedelta(minutes=1),
                   format="MM-DD HH:mm", key=f"cam_at_{camera}")
    files = cameras.snapshot_files()
    ref = files.nearest([camera], int(at.timestamp() * 1e9), within_s=24 * 3600)
    if ref is None:
        st.info(v.t("cam.no_snapshots"))
    else:
        taken = int(ref.time_ns)
        full = files.read(ref.path)
        if full is not None:
            st.image(full, caption=v.t("cam.taken", time=v.fmt_time(taken), age=v.age(taken, data.now_ns())),
                     width="stretch")
    try:
        st.plotly_chart(timeline(camera, start, now, at), config={"displayModeBar": False}, key="cam_timeline")
    except StoreError as e:
        st.error(v.t("common.store_down", error=str(e)[:200]))


@st.fragment(run_every=cfg.refresh_s)
def grid() -> None:
    signin.still(me)  # the page's check does not run again with the fragment
    now = data.now_ns()
    try:
        shown = cameras.views(me, plots or None)
    except StoreError as e:
        st.error(v.t("common.store_down", error=str(e)[:200]))
        return
    counts = {s: sum(1 for cv in shown if cv.state == s) for s in cameras.BADGE}
    st.caption(" · ".join(f"{cameras.BADGE[s]} {v.t('cam.state_' + s)} {n}" for s, n in counts.items() if n))
    pages = max(1, -(-len(shown) // PER_PAGE))
    page = st.number_input(v.t("cam.page"), 1, pages, 1, key="cam_page") if pages > 1 else 1
    cols = st.columns(4)
    for i, cv in enumerate(shown[(page - 1) * PER_PAGE:page * PER_PAGE]):
        with cols[i % 4]:
            cameras.tile(cv, v, now)
            if st.button(v.t("cam.open"), key=f"cam_open_{cv.cam.id}"):
                st.session_state["cam_chosen"] = cv.cam.id
                st.rerun(scope="app")


if chosen in by_id:
    detail(str(chosen))
    st.divider()
grid()
