"""A notice on screen (the 通知 page and the receipt a notice's link opens): its level, text, the plots it concerns,
the attachment, who sent it, and the reader's own 收到. Showing it to its reader records the read."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import streamlit as st

from dashboard import shell
from orchard.records.notices import LEVEL_ICONS, Notice, NoticeBook, Recipient, Urgency
from orchard.records.people import People

MAX_ATTACHMENT = 20 * 1024 * 1024  # a photo or a PDF from the meteorological office
IMAGE = re.compile(r"\.(jpe?g|png|webp)$", re.IGNORECASE)


def attachment_dir() -> Path:
    return shell.settings().data_dir / "notices"


def save_attachment(name: str, data: bytes) -> str:
    """Store an uploaded file under the data dir; the path (relative to it) is kept with the notice."""
    safe = re.sub(r"[^\w.\-]+", "_", Path(name).name)[-80:] or "file"
    rel = f"notices/{uuid.uuid4().hex}-{safe}"
    path = shell.settings().data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel


def _attachment_bytes(rel: str) -> bytes | None:
    root = shell.settings().data_dir.resolve()
    path = (root / rel).resolve()
    if root not in path.parents or not path.is_file():  # only files under the data dir, whatever the row says
        return None
    return path.read_bytes()


def heading(notice: Notice, v: shell.View) -> str:
    level = f"{LEVEL_ICONS[notice.level]} {v.t(f'alarm.level_{notice.level}')} · " if notice.level else ""
    urgent = v.t("notice.urgent_prefix") if notice.urgency == Urgency.URGENT else ""
    return f"{urgent}{level}{notice.title}"


def show(notice: Notice, mine: Recipient | None, v: shell.View, book: NoticeBook, key: str) -> None:
    """The notice, in full. For its reader (`mine`), the read is recorded now and 收到 offered when asked for."""
    now = time.time_ns()
    if mine is not None and mine.read_ns is None:
        mine = book.read(notice.id, mine.user, now) or mine
    author = People(shell.records()).get(notice.author)
    st.subheader(shell.plain(heading(notice, v)))
    st.caption(v.t("notice.sent_by", author=author.display if author else notice.author,
                   time=v.fmt_time(notice.created_ns)))
    if notice.withdrawn_ns is not None:
        st.warning(v.t("notice.withdrawn_at", time=v.fmt_time(notice.withdrawn_ns)))
    if notice.body:
        st.markdown(shell.plain(notice.body))
    if notice.plots:
        st.markdown(v.t("notice.plots", plots="、".join(notice.plots)))
    if notice.attachment and (data := _attachment_bytes(notice.attachment)) is not None:
        name = notice.attachment_name or Path(notice.attachment).name
        if IMAGE.search(name):
            st.image(data, caption=name)
        st.download_button(v.t("notice.download", name=name), data, file_name=name, key=f"{key}_file")
    if mine is None:
        return
    if notice.confirm and mine.confirmed_ns is None:
        if st.button(v.t("notice.confirm"), type="primary", key=f"{key}_confirm"):
            mine = book.confirm(notice.id, mine.user, time.time_ns()) or mine
            st.success(v.t("notice.confirmed_thanks"))
    elif notice.confirm:
        st.success(v.t("notice.confirmed_at", time=v.fmt_time(mine.confirmed_ns)))
    else:
        st.caption(v.t("notice.read_at", time=v.fmt_time(mine.read_ns)))
