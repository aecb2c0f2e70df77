"""A background batch writer for services that produce points as they go (cameras, the grading line): points
are queued from any thread and written once a second; while the store is away they wait, up to a limit."""

from __future__ import annotations

import logging
import queue
import threading

from orchard.logs import event
from orchard.models import Point
from orchard.store.base import StoreError, TimeSeriesStore

log = logging.getLogger("orchard.store")


class PointWriter:
    def __init__(self, store: TimeSeriesStore, limit: int = 20000) -> None:
        self.store, self.limit = store, limit
        self.queue: queue.Queue[Point] = queue.Queue()
        self.pending: list[Point] = []
        self.written = 0

    def put(self, point: Point) -> None:
        self.queue.put(point)

    def flush(self) -> None:
        while True:
            try:
                self.pending.append(self.queue.get_nowait())
            except queue.Empty:
                break
        if not self.pending:
            return
        try:
            self.store.write(self.pending)
            self.written += len(self.pending)
            self.pending = []
        except StoreError as e:
            dropped = max(0, len(self.pending) - self.limit)
            self.pending = self.pending[dropped:]
            event(log, "point_write_failed", logging.WARNING, error=str(e)[:200], waiting=len(self.pending),
                  dropped=dropped)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.flush()
        self.flush()
