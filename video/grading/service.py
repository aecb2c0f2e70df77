"""`orchard grading`: every grading line's camera, graded fruit by fruit, per grower lot.

Per line, one thread takes the belt's frames in order (video/grading/feeds.py) at the line's rate and grades
them (video/grading/grader.py). Every fruit, once graded, belongs to the lot open on its line at that moment
(orchard/records/lots.py) and becomes
- a point in the store (measurement `fruit`: tags site, line, lot, plot; its sizes, weight, class, defects),
- part of its minute's aggregate (measurement `grading`, one point per line, lot and minute, written also when
  the belt is empty: the heartbeat the line-stopped rule watches),
- part of its lot's running totals in the records DB, added every few seconds (the report and the history).
The newest frame, annotated, is saved once a second for the dashboard.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from orchard.logs import event
from orchard.models import FRUIT_MEASUREMENT, LineMinute, Point
from orchard.records import Records
from orchard.records.lots import Lot, Lots, Tally
from orchard.settings import GradingSettings, Settings
from orchard.site import LineConfig, Site, site_for
from orchard.store import open_store
from orchard.store.writer import PointWriter
from orchard.supervise import Heartbeat, Steps
from video.grading.annotate import annotate
from video.grading.calibrate import MarkerMissing
from video.grading.feeds import FrameFeed, open_feed
from video.grading.grader import Grader
from video.grading.results import GradedFruit
from video.sources import CameraUnavailable

log = logging.getLogger("orchard.grading")
NS = 1_000_000_000
MINUTE_NS = 60 * NS
LOT_CHECK_S = 2.0  # how often the open lot is looked up (a lot ended in the dashboard takes effect this fast)
TALLY_EVERY_S = 5.0  # how often lot totals are added to the records DB


def fruit_point(site: str, line: str, lot: Lot | None, f: GradedFruit, time_ns: int) -> Point:
    fields: dict[str, float | int | str] = {
        "grade": f.grade, "weight_g": round(f.weight_g, 1), "length_mm": round(f.length_mm, 1),
        "max_diameter_mm": round(f.max_diameter_mm, 1), "min_diameter_mm": round(f.min_diameter_mm, 1),
        "ratio": round(f.ratio, 3), "colour_std": round(f.colour_std, 2), "lane": f.lane,
        "defects": ",".join(f"{k}:{v:.0f}" for k, v in sorted(f.defects.items())), "reasons": ",".join(f.reasons)}
    if f.count_size is not None:
        fields["count_size"] = f.count_size
    tags = {"site": site, "line": line, "lot": str(lot.id) if lot else "", "plot": lot.plot if lot else ""}
    return Point(FRUIT_MEASUREMENT, tags, fields, time_ns)


@dataclass
class _Minute:
    plot: str
    fruit: int = 0
    grades: Counter[str] = field(default_factory=Counter)
    weight_g: float = 0.0
    rejects: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    errors: int = 0


class LineWorker:
    """One grading line: `step` grades one frame; `run` repeats it at the line's rate until stopped."""

    def __init__(self, site: Site, line: LineConfig, cfg: GradingSettings, lots: Lots, writer: PointWriter,
                 frame_file: Path | None, feed: FrameFeed | None = None,
                 clock: Callable[[], int] = time.time_ns, frame_every_s: float = 1.0,
                 lot_check_s: float = LOT_CHECK_S) -> None:
        self.site, self.line, self.cfg, self.lots, self.writer = site, line, cfg, lots, writer
        self.frame_file = frame_file
        self.clock, self.frame_every_s, self.lot_check_s = clock, frame_every_s, lot_check_s
        self.grader = Grader(cfg, cfg.px_per_mm)
        self.feed = feed
        self.lot: Lot | None = None  # open on the line
        self.tail: Lot | None = None  # ended, with its last fruit still on the belt: they are its own
        self._lot_checked = -1e9
        self.tallies: dict[int, Tally] = {}
        self._tallied = time.monotonic()
        self.minute_ns: int | None = None
        self.minute: dict[str, _Minute] = {}
        self.last_ns = 0
        self.graded = 0
        self.fault = ""  # what keeps the line from being graded just now ("" when all is well)
        self._saved = -1e9
        self.steps = Steps(log)

    # -- the open lot --------------------------------------------------------------------------------------------
    def current_lot(self) -> Lot | None:
        if time.monotonic() - self._lot_checked >= self.lot_check_s:
            try:
                lot = self.lots.current(self.line.id)
                self._lot_checked = time.monotonic()
                if lot is None and self.lot is not None:
                    self.tail = self.lot
                elif lot is not None:
                    self.tail = None  # the next grower's fruit: whatever comes now is theirs
                self.lot = lot
            except SQLAlchemyError as e:  # records DB away: carry on with the lot we knew
                event(log, "lot_lookup_failed", logging.WARNING, line=self.line.id, error=str(e)[:200])
                self._lot_checked = time.monotonic()
        return self.lot

    # -- one frame -----------------------------------------------------------------------------------------------
    def step(self) -> list[GradedFruit]:
        now = self.clock()
        lot = self.current_lot() or self.tail
        self._roll_minute(now, lot)
        acc = self._acc(lot)
        try:
            if self.feed is None:
                self.feed = open_feed(self.line, self.current_lot)
            image = self.feed.next()
            if image is None:
                self._set_fault("")
                return self._finish_tracks(lot, now) if self.grader.tracker.tracks else []
            fruit = self.grader.process(image)
        except (CameraUnavailable, MarkerMissing) as e:
            acc.errors += 1
            self._set_fault(str(e))
            return []
        acc.frames += 1
        self._set_fault("")
        self._record(fruit, lot, now)
        if self.tail is not None and self.grader.last is not None and not self.grader.last.fruit \
                and not self.grader.tracker.tracks:
            self.tail = None  # the belt has run empty: the ended lot is complete
        self._save_frame(image, lot, now)
        return fruit

    def _finish_tracks(self, lot: Lot | None, now: int) -> list[GradedFruit]:
        """The recording played out, or the service stops: the fruit still followed are graded from what was seen
        of them."""
        fruit = self.grader.flush()
        self._record(fruit, lot, now)
        return fruit

    def _record(self, fruit: list[GradedFruit], lot: Lot | None, now: int) -> None:
        acc = self._acc(lot)
        for f in fruit:
            t = max(now, self.last_ns + 1)  # one point per fruit: never two at the same instant
            self.last_ns = t
            self.writer.put(fruit_point(self.site.id, self.line.id, lot, f, t))
            acc.fruit += 1
            acc.grades[f.grade] += 1
            acc.weight_g += f.weight_g
            if f.grade == "reject":
                acc.rejects.update(f.reasons)
            if lot is not None:
                self.tallies.setdefault(lot.id, Tally()).add(f.grade, f.count_size, f.weight_g, f.reasons, t)
        self.graded += len(fruit)
        if time.monotonic() - self._tallied >= TALLY_EVERY_S:
            self.flush_tallies()

    def _acc(self, lot: Lot | None) -> _Minute:
        key = str(lot.id) if lot else ""
        if key not in self.minute:
            self.minute[key] = _Minute(lot.plot if lot else "")
        return self.minute[key]

    def _roll_minute(self, now: int, lot: Lot | None) -> None:
        start = now - now % MINUTE_NS
        if self.minute_ns is None:
            self.minute_ns = start
        if start != self.minute_ns:
            self.close_minute(lot)
            self.minute_ns = start

    def close_minute(self, lot: Lot | None) -> None:
        """Write the minute's aggregates; a minute with nothing graded still says which lot was open."""
        if self.minute_ns is None:
            return
        if not self.minute:
            self._acc(lot)
        for key, m in self.minute.items():
            self.writer.put(LineMinute(self.site.id, self.line.id, key, m.plot, self.minute_ns, m.fruit,
                                       dict(m.grades), m.weight_g, dict(m.rejects), m.frames, m.errors).point())
        self.minute = {}
        self.flush_tallies()

    def flush_tallies(self) -> None:
        self._tallied = time.monotonic()
        for lot_id, tally in list(self.tallies.items()):
            try:
                self.lots.add(lot_id, tally)
                del self.tallies[lot_id]
            except SQLAlchemyError as e:  # kept and added next time
                event(log, "lot_totals_failed", logging.WARNING, line=self.line.id, lot=lot_id, error=str(e)[:200])

    def _set_fault(self, fault: str) -> None:
        if fault != self.fault:
            event(log, "line_fault" if fault else "line_ok", logging.WARNING if fault else logging.INFO,
                  line=self.line.id, error=fault[:200])
            self.fault = fault

    def _save_frame(self, image: np.ndarray, lot: Lot | None, now: int) -> None:
        if self.frame_file is None or time.monotonic() - self._saved < self.frame_every_s:
            return
        self._saved = time.monotonic()
        header = f"{self.line.id}  lot {'#' + str(lot.id) if lot else '-'}  graded {self.graded}"
        jpeg = annotate(image, self.grader.last, header)
        self.frame_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.frame_file.with_suffix(".tmp")
        tmp.write_bytes(jpeg)
        os.replace(tmp, self.frame_file)  # the dashboard never reads half a picture

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.line.fps
        next_at = time.monotonic()
        while not stop.is_set():
            # A bug on one frame must not stop the line's grading for good: logged, counted, next frame.
            self.steps.run("frame", self.step, line=self.line.id)
            next_at = max(next_at + period, time.monotonic() - period)
            stop.wait(max(0.0, next_at - time.monotonic()))
        self.finish()

    def finish(self) -> None:
        lot = self.lot or self.tail
        self._finish_tracks(lot, self.clock())
        self.close_minute(lot)
        if self.feed is not None:
            self.feed.close()


class Grading:
    def __init__(self, workers: list[LineWorker], writer: PointWriter) -> None:
        self.workers, self.writer = workers, writer
        self.stop = threading.Event()

    def run(self) -> None:
        threads = [threading.Thread(target=w.run, args=(self.stop,), name=f"line-{w.line.id}", daemon=True)
                   for w in self.workers]
        written = threading.Event()  # the writer stops after the lines: their last minute gets written too
        writer = threading.Thread(target=self.writer.run, args=(written,), name="grading-writer", daemon=True)
        for t in [*threads, writer]:
            t.start()
        self.stop.wait()
        for t in threads:
            t.join(30)
        written.set()
        writer.join(30)


def build(settings: Settings, lines: list[str] | None = None) -> Grading:
    """Everything the service needs, in order; no camera is opened until `run`."""
    site = site_for(settings)
    chosen = [site.line(x) for x in lines] if lines else list(site.lines)
    store = open_store(settings.store_url)
    store.ensure_ready()
    lots = Lots(Records.open(settings), site)
    # Alive while the minute aggregates and fruit reach the store; each line writes at least once a minute.
    writer = PointWriter(store, on_written=Heartbeat(settings.data_dir, "grading", 300.0).beat)
    workers = [LineWorker(site, line, settings.grading, lots, writer, settings.line_frame(line.id)) for line in chosen]
    return Grading(workers, writer)


def run_grading(settings: Settings, lines: list[str] | None = None) -> None:
    service = build(settings, lines)

    def stop(*_: object) -> None:
        service.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    event(log, "grading_started", site=settings.site, lines=",".join(w.line.id for w in service.workers))
    if not service.workers:
        event(log, "no_lines", logging.WARNING, hint="add [[lines]] to site.toml")
    service.run()
