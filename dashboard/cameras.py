"""Camera tiles for the 视频监控 page and the command center's camera wall.

A camera that stopped reporting, or cannot be reached, is shown as down since when, never with its last frame
posing as live. Images go to the browser as the stored JPEG bytes (no PIL decode and re-encode), and a page shows
a bounded number of them, so hours of kiosk refreshes do not pile up media in the server.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

import streamlit as st
import streamlit.components.v1 as components

from dashboard import shell
from dashboard.shell import View
from orchard.access import Principal
from orchard.models import CameraStatus
from orchard.records.snapshots import SnapshotFiles, SnapshotRef
from orchard.site import CameraConfig, CameraKind

NS = 1_000_000_000
State = Literal["live", "problem", "down", "never"]
BADGE = {"live": "🟢", "problem": "🟠", "down": "🔴", "never": "⚪"}


@dataclass(frozen=True, slots=True)
class CameraView:
    cam: CameraConfig
    status: CameraStatus | None
    state: State
    since_ns: int | None  # when the current trouble began (down or problem)
    thumb: str | None  # the latest thumbnail, relative to the snapshot root; None when down
    snapshot_ns: int | None


def camera_view(cam: CameraConfig, status: CameraStatus | None, files: SnapshotFiles, now_ns: int) -> CameraView:
    if status is None:
        return CameraView(cam, None, "never", None, None, None)
    if now_ns - status.time_ns > cam.silent_after_s() * NS:
        return CameraView(cam, status, "down", status.time_ns, None, status.snapshot_ns)
    if status.health == "unreachable":
        return CameraView(cam, status, "down", status.since_ns, None, None)
    thumb = files.ref(cam.id, status.snapshot_ns).thumb if status.snapshot_ns else None
    state: State = "live" if status.health == "ok" else "problem"
    return CameraView(cam, status, state, status.since_ns if state == "problem" else None, thumb, status.snapshot_ns)


def views(who: Principal, plots: list[str] | None = None) -> list[CameraView]:
    """The cameras on the principal's plots (of those asked for), troubled ones first."""
    from dashboard import data

    site, files = shell.visible_site(who), snapshot_files()
    statuses, now = data.camera_statuses(who), data.now_ns()
    order = {"down": 0, "problem": 1, "never": 2, "live": 3}
    out = [camera_view(c, statuses.get(c.id), files, now) for c in site.cameras if plots is None or c.plot in plots]
    return sorted(out, key=lambda cv: (order[cv.state], cv.cam.plot, cv.cam.id))


@st.cache_resource
def snapshot_files() -> SnapshotFiles:
    return SnapshotFiles(shell.settings().snapshot_dir)


def headline(cv: CameraView, v: View) -> str:
    where = shell.site().plot_label(cv.cam.plot, v.lang)
    return f"{BADGE[cv.state]} **{cv.cam.label()}** · {where}"


def status_line(cv: CameraView, v: View, now_ns: int) -> str:
    s = cv.status
    if cv.state == "never":
        return v.t("cam.never")
    if cv.state == "down":
        return v.t("cam.down_since", time=v.fmt_time(cv.since_ns), last=v.fmt_time(cv.snapshot_ns))
    assert s is not None
    age = v.age(cv.snapshot_ns, now_ns)
    if cv.state == "problem":
        return v.t("cam.problem_since", problem=v.t(f"cam.health_{s.health}"), time=v.fmt_time(cv.since_ns), age=age)
    if s.intrusion:
        return v.t("cam.intrusion", zone=s.intrusion, age=age)
    return v.t("cam.live", age=age)


def tile(cv: CameraView, v: View, now_ns: int) -> None:
    """One camera: name and badge, its thumbnail (or why there is none), age and health."""
    with st.container(border=True):
        st.markdown(headline(cv, v))
        data = snapshot_files().read(cv.thumb) if cv.thumb else None
        if data is not None:
            st.image(data, width="stretch")
        else:
            st.markdown(f"<div style='aspect-ratio:16/9;display:flex;align-items:center;justify-content:center;"
                        f"background:#1c1c1c;color:#ddd;border-radius:6px'>📵 {v.t('cam.no_picture')}</div>",
                        unsafe_allow_html=True)
        st.caption(status_line(cv, v, now_ns))


def _session() -> str | None:
    """The viewer's session token, when signed in (dashboard/signin.py): video addresses end with the session."""
    from dashboard import signin

    value = st.session_state.get(signin.TOKEN)
    return value if isinstance(value, str) else None


def evidence(refs: list[SnapshotRef], v: View, *, full: bool = False, width: int | str = "stretch") -> None:
    """An alarm's camera evidence: a clip plays in place (dashboard/media.py signs its address), a snapshot shows
    as its thumbnail, or its full frame when `full`. Clips first: they show more than any one picture."""
    from dashboard import media

    files = snapshot_files()
    names = {c.id: c.label() for c in shell.site().cameras}
    for ref in sorted(refs, key=lambda r: not SnapshotFiles.is_clip(r.path)):
        camera = names.get(ref.camera, ref.camera)
        if SnapshotFiles.is_clip(ref.path):
            if not (files.root / ref.path).is_file():
                continue  # past its retention
            poster = files.read(ref.thumb)
            data_uri = f"data:image/jpeg;base64,{base64.b64encode(poster).decode()}" if poster else None
            st.caption(v.t("cam.clip", camera=camera, time=v.fmt_time(ref.time_ns)))
            components.html(media.clip_html(ref.path, data_uri, session=_session()), height=310)
        elif (photo := files.read(ref.path if full else ref.thumb)) is not None:
            st.image(photo, caption=v.t("cam.evidence", camera=camera, time=v.fmt_time(ref.time_ns)),
                     width=width)  # type: ignore[arg-type]


def live(cam: CameraConfig, v: View, height_px: int = 360) -> None:
    """The camera's live video (kind rtsp only; other kinds have snapshots only)."""
    from dashboard import media

    texts = {"delay": v.t("cam.live_delay", s="{s}"), "connecting": v.t("cam.live_connecting"),
             "fallback": v.t("cam.live_fallback")}
    components.html(media.player_html(cam.id, texts, height_px=height_px, session=_session()),
                    height=height_px + 30)


def smart_live(shown: list[CameraView], seen_ns: dict[str, int], now_ns: int, max_live: int, hold_s: float
               ) -> list[str]:
    """Frigate's smart streaming for the wall: which rtsp cameras play live now. A camera whose latest report
    sees a moving object or an intrusion is marked in `seen_ns` (the wall's memory across refreshes); it stays
    live `hold_s` after that, and at most `max_live` do at once (intrusions first, then the latest motion), so a
    wall of twelve cameras costs at most `max_live` streams."""
    for cv in shown:
        s = cv.status
        if cv.cam.kind == CameraKind.RTSP and cv.state in ("live", "problem") and s is not None and (
                s.intrusion or s.objects > 0):
            seen_ns[cv.cam.id] = max(seen_ns.get(cv.cam.id, 0), s.time_ns)
    hold = int(hold_s * NS)
    active = [cv for cv in shown if cv.cam.kind == CameraKind.RTSP and cv.state in ("live", "problem")
              and now_ns - seen_ns.get(cv.cam.id, -hold - now_ns) <= hold]
    active.sort(key=lambda cv: (not (cv.status and cv.status.intrusion), -seen_ns[cv.cam.id], cv.cam.id))
    return [cv.cam.id for cv in active[:max_live]]


def live_tile(cv: CameraView, v: View) -> None:
    """A wall tile playing live (smart streaming), with the same heading and status line as a snapshot tile."""
    with st.container(border=True):
        st.markdown(f"{headline(cv, v)} · 🔴 {v.t('cam.live_video')}")
        live(cv.cam, v, height_px=150)
