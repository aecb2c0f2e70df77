"""The dashboard as an ASGI app (st.App): Streamlit's own server with the sign-in cookie's routes beside it
(dashboard/cookie.py) and the video routes (dashboard/media.py). `orchard dashboard` runs `streamlit run` on this
file; the pages are dashboard/app.py."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import cookie, media

app = st.App(Path(__file__).resolve().parent / "app.py", routes=cookie.routes() + media.routes())
