"""Official weather warnings in CAP, the Common Alerting Protocol (OASIS CAP 1.2,
http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.html), the format China's meteorological services publish
their warning signals in (the national Emergency Warning Release Centre, 12379) and most services worldwide.

A CAP `alert` says who sent it, when, and whether it is a new warning (`Alert`), a change of an earlier one
(`Update`, naming it in `references`) or its end (`Cancel`); each `info` block holds the event (暴雨, 大风, 寒潮),
the severity, the onset and expiry, the headline, description and instruction, and the areas it covers as
polygons, circles or geocodes (in China the administrative division code, GB/T 2260, e.g. 510824 for Cangxi
county). The colour level of a Chinese warning signal (蓝/黄/橙/红, blue/yellow/orange/red) is named in its headline
and event; where it is not, it follows CAP's severity (Minor, Moderate, Severe, Extreme), as the national
centre maps them.

This module reads CAP into `Warning` values and matches them to plots; `feed.WarningFeed` brings them in from a
folder (a file drop) or a URL (a CAP document, or an Atom/RSS feed listing CAP documents).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orchard.site import Plot

NS_CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
MAX_BYTES = 1_000_000  # a CAP message is a few kilobytes; anything far bigger is not one
NS = 1_000_000_000


class CapError(ValueError):
    """Not a CAP 1.2 alert, or one missing what a warning needs; the message says what."""


class Level(StrEnum):
    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


SEVERITY_LEVEL = {"Minor": Level.BLUE, "Moderate": Level.YELLOW, "Severe": Level.ORANGE, "Extreme": Level.RED}
COLOUR_WORDS = {"红色": Level.RED, "橙色": Level.ORANGE, "黄色": Level.YELLOW, "蓝色": Level.BLUE,
                "red": Level.RED, "orange": Level.ORANGE, "yellow": Level.YELLOW, "blue": Level.BLUE}
ALARM_SEVERITY = {Level.BLUE: "warning", Level.YELLOW: "warning", Level.ORANGE: "major", Level.RED: "critical"}


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


@dataclass(frozen=True, slots=True)
class Area:
    desc: str
    polygons: tuple[tuple[tuple[float, float], ...], ...]  # (longitude, latitude) points, as the plots' outlines
    circles: tuple[tuple[float, float, float], ...]  # (longitude, latitude, radius km)
    geocodes: tuple[str, ...]  # the values (administrative division codes)


@dataclass(frozen=True, slots=True)
class Warning:
    """One official warning as a CAP alert's first `info` block in the reader's language has it."""

    identifier: str
    sender: str
    sent_ns: int
    msg_type: MsgType
    references: tuple[str, ...]  # identifiers of the alerts an Update or Cancel replaces
    event: str
    level: Level
    sender_name: str
    headline: str
    description: str
    instruction: str
    onset_ns: int
    expires_ns: int | None
    areas: tuple[Area, ...]

    @property
    def thread(self) -> str:
        """What ties an alert to its updates and cancellation: the sender and the event (an update to 暴雨
        yellow -> orange is the same warning, raised in severity)."""
        return f"{self.sender}/{self.event}"

    def in_force(self, now_ns: int) -> bool:
        return self.msg_type != MsgType.CANCEL and self.onset_ns <= now_ns \
            and (self.expires_ns is None or now_ns < self.expires_ns)

    def covers(self, plot: Plot, area_codes: Sequence[str]) -> bool:
        """Whether any of its areas covers the plot: a polygon that holds one of the plot's corners or its centre
        (or the plot holds one of its points), a circle around the centre, or a geocode of the village (a code
        covers its subdivisions: 510824 covers 510824101)."""
        n = len(plot.polygon)
        centre = (sum(x for x, _ in plot.polygon) / n, sum(y for _, y in plot.polygon) / n)
        points = (*plot.polygon, centre)
        for a in self.areas:
            if any(code.startswith(g) for g in a.geocodes for code in area_codes):
                return True
            for poly in a.polygons:
                if any(inside(p, poly) for p in points) or any(inside(q, plot.polygon) for q in poly):
                    return True
            if any(km_between(centre, (lon, lat)) <= r for lon, lat, r in a.circles):
                return True
        return False


def inside(point: tuple[float, float], polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting: whether the (lon, lat) point lies inside the polygon."""
    x, y = point
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def km_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance of two (lon, lat) points (haversine, mean Earth radius)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _text(el: ET.Element | None, name: str) -> str:
    found = el.find(NS_CAP + name) if el is not None else None
    return (found.text or "").strip() if found is not None else ""


def _time_ns(text: str) -> int | None:
    """CAP times are ISO 8601 with an offset (2027-07-20T14:30:00+08:00)."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise CapError(f"{text!r} is not a CAP time (2027-07-20T14:30:00+08:00)") from None
    if t.tzinfo is None:
        raise CapError(f"{text!r} has no time zone offset, which CAP requires")
    return int(t.timestamp() * NS)


def _area(el: ET.Element) -> Area:
    polygons = []
    for p in el.findall(NS_CAP + "polygon"):  # "lat,lon lat,lon ..." (CAP puts latitude first)
        pts = [tuple(float(v) for v in pair.split(",")) for pair in (p.text or "").split()]
        if len(pts) >= 4:
            polygons.append(tuple((lon, lat) for lat, lon in pts))
    circles = []
    for c in el.findall(NS_CAP + "circle"):  # "lat,lon radius_km"
        centre, _, radius = (c.text or "").strip().partition(" ")
        lat, lon = (float(v) for v in centre.split(","))
        circles.append((lon, lat, float(radius)))
    codes = tuple(_text(g, "value") for g in el.findall(NS_CAP + "geocode") if _text(g, "value"))
    return Area(_text(el, "areaDesc"), tuple(polygons), tuple(circles), codes)


def parse(data: bytes, lang: str = "zh") -> Warning:
    """One CAP 1.2 alert; the `info` block in `lang` (zh-CN, zh ...) when there is one, else the first."""
    if len(data) > MAX_BYTES:
        raise CapError(f"{len(data)} bytes is too big for a CAP alert")
    try:
        root = ET.fromstring(data)  # expat: no external entities, entity expansion limited
    except ET.ParseError as e:
        raise CapError(f"not XML ({e})") from None
    if root.tag != NS_CAP + "alert":
        raise CapError(f"not a CAP 1.2 alert (root element {root.tag!r})")
    identifier, sender, sent = _text(root, "identifier"), _text(root, "sender"), _text(root, "sent")
    if not identifier or not sender or not sent:
        raise CapError("a CAP alert needs identifier, sender and sent")
    try:
        msg_type = MsgType(_text(root, "msgType"))
    except ValueError:
        raise CapError(f"msgType {_text(root, 'msgType')!r} is not a warning (Alert, Update or Cancel)") from None
    # references: "sender,identifier,sent" triples separated by spaces
    references = tuple(r.split(",")[1] for r in _text(root, "references").split() if r.count(",") == 2)
    infos = root.findall(NS_CAP + "info")
    if not infos:
        raise CapError("a CAP alert without an info block says nothing")
    info = next((i for i in infos if _text(i, "language").lower().startswith(lang)), infos[0])
    event, headline = _text(info, "event"), _text(info, "headline")
    level = next((lvl for word, lvl in COLOUR_WORDS.items() if word in headline or word in event), None) \
        or SEVERITY_LEVEL.get(_text(info, "severity"))
    if level is None:
        raise CapError(f"no warning level: severity {_text(info, 'severity')!r} and no colour in the headline")
    sent_ns = _time_ns(sent) or 0
    onset = _time_ns(_text(info, "onset")) or _time_ns(_text(info, "effective")) or sent_ns
    return Warning(identifier, sender, sent_ns, msg_type, references, event or headline, level,
                   _text(info, "senderName") or sender, headline or event, _text(info, "description"),
                   _text(info, "instruction"), onset, _time_ns(_text(info, "expires")),
                   tuple(_area(a) for a in info.findall(NS_CAP + "area")))


def current(warnings: Iterable[Warning]) -> dict[str, Warning]:
    """Per thread (sender and event), its newest message: a Cancel or an Update replaces what came before."""
    out: dict[str, Warning] = {}
    for w in sorted(warnings, key=lambda w: w.sent_ns):
        out[w.thread] = w
    return out
