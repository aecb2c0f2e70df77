"""Two doors Streamlit leaves open to any websocket or browser, closed before the server starts
(`dashboard/serve.py`):

- "Clear cache" (the app menu's, a `clear_cache` message any websocket can send) empties every cache of the
  server, making every page slow for everyone: honoured only for a session signed in as the command center.
- `/_stcore/metrics` tells anyone the names of the cached functions and how much they hold: not served.
"""

from __future__ import annotations

import logging
from typing import Any

from orchard.logs import event

log = logging.getLogger("orchard.dashboard")


def _center(session_state: Any) -> bool:
    try:
        # Streamlit's SafeSessionState has `in` and [] but no .get (an attribute reads as a key)
        principal = session_state["principal"] if "principal" in session_state else None  # noqa: SIM401
    except Exception:  # whatever Streamlit's state holds: no principal means no
        return False
    return getattr(principal, "role", None) == "center"


def install() -> None:
    from streamlit.runtime.app_session import AppSession
    from streamlit.web.server.starlette import starlette_app

    original = AppSession._handle_clear_cache_request
    if getattr(original, "guarded", False):
        return

    def clear_cache(self: AppSession) -> None:
        if not _center(self._session_state):
            event(log, "clear_cache_refused", logging.WARNING, session=self.id[:8])
            return
        original(self)
        event(log, "cache_cleared", session=self.id[:8])

    clear_cache.guarded = True  # type: ignore[attr-defined]
    AppSession._handle_clear_cache_request = clear_cache  # type: ignore[method-assign]
    starlette_app.create_metrics_routes = lambda runtime, base_url: []
