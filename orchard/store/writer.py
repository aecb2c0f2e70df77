"""A background batch writer for services that produce points as they go (cameras, the grading line): points
are queued from any thread and written once a second. While the store is away they wait in memory, at most
`limit` of them: beyond that the oldest are dropped and counted (a camera's status point of an hour ago is worth
less than the one of now), so a long outage costs bounded memory, never the process."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from orchard.logs import event
from orchard.models import Point
from orchard.store.base import StoreError, TimeSeriesStore
from orchard.supervise import loop

log = logging.getLogger("orchard.store")


class PointWriter:
    def __init__(self, store: TimeSeriesStore, limit: int = 20000,
                 on_written: Callable[[], None] | None = None) -> None:
        self.store, self.limit, self.on_written = store, limit, on_written
        self._points: deque[Point] = deque()
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0

    def put(self, point: Point) -> None:
        with self._lock:
            self._points.append(point)
            if len(self._points) > self.limit:
                self._points.popleft()
                self.dropped += 1

    def waiting(self) -> int:
        with self._lock:
            return len(self._points)

    def flush(self) -> None:
        """Write what waits; on a store error it stays queued (oldest first) for the next flush."""
        with self._lock:
            batch, dropped_before = list(self._points), self.dropped
        if batch:
            try:
                self.store.write(batch)
            except StoreError as e:
                event(log, "point_write_failed", logging.WARNING, error=str(e)[:200], waiting=len(batch),
                      dropped=self.dropped)
                return
            with self._lock:  # what was put meanwhile stays; of the batch, what put() did not push out goes
                for _ in range(max(0, len(batch) - (self.dropped - dropped_before))):
                    self._points.popleft()
            self.written += len(batch)
        if self.on_written is not None:
            self.on_written()

    def run(self, stop: threading.Event) -> None:
        def step() -> float:
            self.flush()
            return 1.0

        loop("point-writer", step, stop, log)
        self.flush()
