"""Where official warnings come from: a folder CAP files are dropped into (by the county's system, a mail
gateway, a person), and/or a URL that serves a CAP alert or an Atom/RSS feed of CAP alerts (the form national CAP
feeds take, e.g. those the WMO Alert Hub lists). The feed keeps every message it has read for a week after it
expired, so an Update or a Cancel finds the warning it ends, and reading the same file twice changes nothing."""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

from analytics.cap import MAX_BYTES, NS, CapError, Warning, current, parse
from orchard.logs import event
from orchard.settings import WarningsSettings

log = logging.getLogger("orchard.analytics.cap")
KEEP_NS = 7 * 86400 * NS
MAX_LINKS = 50  # CAP documents fetched from one feed read


class WarningFeed:
    def __init__(self, folder: Path | None = None, url: str | None = None, refresh_s: float = 300,
                 timeout_s: float = 10, transport: httpx.BaseTransport | None = None) -> None:
        self.folder, self.url, self.refresh_s = folder, url, refresh_s
        self.client = httpx.Client(timeout=timeout_s, transport=transport) if url else None
        self.messages: dict[str, Warning] = {}  # identifier -> the message
        self.files: dict[str, float] = {}  # file name -> mtime read
        self.fetched: set[str] = set()  # CAP links of the feed already read
        self.next_s = -math.inf
        self.failing: set[str] = set()

    def latest(self, now_s: float, fetch: bool = True) -> list[Warning]:
        """The newest message of each warning thread (in force or not: the rule clears what has ended)."""
        if fetch and now_s >= self.next_s:
            self.next_s = now_s + self.refresh_s
            if self.folder is not None:
                self._guard("folder", self._read_folder)
            if self.client is not None:
                self._guard("url", self._read_url)
            cutoff = int(now_s * NS) - KEEP_NS
            self.messages = {k: w for k, w in self.messages.items() if (w.expires_ns or w.sent_ns) >= cutoff}
        return list(current(self.messages.values()).values())

    def _guard(self, where: str, read: object) -> None:
        try:
            read()  # type: ignore[operator]
        except (OSError, httpx.HTTPError, CapError) as e:
            if where not in self.failing:
                event(log, "warnings_failed", logging.WARNING, where=where, error=str(e)[:300],
                      hint="official warnings from here are not seen until this works again")
            self.failing.add(where)
        else:
            if where in self.failing:
                event(log, "warnings_back", where=where)
            self.failing.discard(where)

    def _take(self, data: bytes, origin: str) -> None:
        try:
            w = parse(data)
        except CapError as e:  # one bad message never hides the others
            event(log, "warning_refused", logging.WARNING, origin=origin, error=str(e)[:300])
            return
        if w.identifier not in self.messages:
            event(log, "warning_read", origin=origin, identifier=w.identifier, event=w.event,
                  warning_level=w.level.value, msg_type=w.msg_type.value)
        self.messages[w.identifier] = w

    def _read_folder(self) -> None:
        assert self.folder is not None
        for path in sorted(self.folder.glob("*.xml")):
            stamp = path.stat().st_mtime
            if self.files.get(path.name) == stamp:
                continue
            if path.stat().st_size <= MAX_BYTES:
                self._take(path.read_bytes(), path.name)
            self.files[path.name] = stamp

    def _get(self, url: str) -> bytes:
        assert self.client is not None
        r = self.client.get(url)
        if r.status_code != 200:
            raise httpx.HTTPStatusError(f"HTTP {r.status_code} from the warnings feed", request=r.request,
                                        response=r)
        return r.content[:MAX_BYTES + 1]

    def _read_url(self) -> None:
        assert self.url is not None
        body = self._get(self.url)
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise CapError(f"the warnings feed is not XML ({e})") from None
        if root.tag.endswith("}alert"):
            self._take(body, self.url)
            return
        links = [el.get("href", "") for el in root.iter("{http://www.w3.org/2005/Atom}link")
                 if el.get("type", "") in ("application/cap+xml", "") and el.get("rel", "alternate") == "alternate"]
        links += [el.text.strip() for el in root.iter("link") if el.text and el.text.strip()]  # RSS 2.0 items
        for link in [u for u in links if u and u not in self.fetched][:MAX_LINKS]:
            self._take(self._get(link), link)
            self.fetched.add(link)


def feed_for(cfg: WarningsSettings) -> WarningFeed | None:
    if cfg.folder is None and cfg.url is None:
        return None
    return WarningFeed(cfg.folder, cfg.url, cfg.refresh_min * 60, cfg.timeout_s)
