"""Long-running loops that never die silently, and the heartbeat that shows they are alive.

Every service loop runs its steps through `Steps.run`: an exception (the records DB away, a driver error, a bug)
is logged with the step's name and context, counted, and the loop carries on after a pause that grows with each
failure in a row (`Backoff`); a success resets it. A live process therefore never holds a dead loop.

Each service also writes a heartbeat file (`Heartbeat.beat`) after each successful cycle or write, with the
limit after which it counts as stuck. `orchard check --service NAME` (the containers' healthcheck) fails when the
newest beat is older than that limit, so a process that is up but no longer working shows as unhealthy.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from orchard.logs import event


@dataclass(slots=True)
class Backoff:
    """Pause after the n-th failure in a row: base * 2**(n-1), at most `cap_s`; nothing after a success."""

    base_s: float = 1.0
    cap_s: float = 60.0
    failures: int = 0

    def failed(self) -> float:
        self.failures += 1
        return min(self.cap_s, self.base_s * 2 ** (self.failures - 1))

    def ok(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class Steps:
    """The steps of one service's loops, each guarded: failures counted per step, never raised. The first
    failure of a run of them is logged with its traceback, the ones after it in one line each."""

    log: logging.Logger
    failures: dict[str, int] = field(default_factory=dict)
    in_a_row: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, name: str, fn: Callable[[], Any], **context: Any) -> bool:
        """Run one step; False (after logging it with its context) when it raised."""
        try:
            fn()
        except Exception as e:
            with self.lock:
                self.failures[name] = self.failures.get(name, 0) + 1
                self.in_a_row[name] = row = self.in_a_row.get(name, 0) + 1
                count = self.failures[name]
            detail = str(e).splitlines()[0][:300] if str(e) else ""
            self.log.error("step_failed", exc_info=row == 1, extra={"kv": {
                "step": name, "error": type(e).__name__, "detail": detail, "failures": count, "in_a_row": row,
                **context}})
            return False
        if self.in_a_row.get(name):
            with self.lock:
                row = self.in_a_row.pop(name, 0)
            event(self.log, "step_recovered", step=name, after_failures=row, **context)
        return True

    def total(self) -> int:
        with self.lock:
            return sum(self.failures.values())


def loop(name: str, step: Callable[[], float], stop: threading.Event, log: logging.Logger,
         backoff: Backoff | None = None) -> None:
    """Call `step` until `stop` is set; it returns the seconds until its next call. When it raises, the
    exception is logged and counted and the next call comes after a growing pause (backoff), never a dead loop."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        try:
            wait = step()
            backoff.ok()
        except Exception as e:
            wait = backoff.failed()
            log.error("loop_failed", exc_info=True, extra={"kv": {
                "loop": name, "error": type(e).__name__, "failures_in_a_row": backoff.failures, "retry_s": wait}})
        stop.wait(max(0.0, wait))


@dataclass(frozen=True, slots=True)
class Beat:
    service: str
    at: float  # epoch seconds of the last successful cycle or write
    limit_s: float  # older than this, the service counts as stuck
    pid: int
    detail: dict[str, Any]

    def age_s(self, now: float) -> float:
        return now - self.at


def heartbeat_dir(data_dir: Path) -> Path:
    return data_dir / "heartbeats"


class Heartbeat:
    """<data_dir>/heartbeats/<service>@<host>.json, replaced whole on every beat (one per container or host)."""

    def __init__(self, data_dir: Path, service: str, limit_s: float, clock: Callable[[], float] = time.time,
                 min_gap_s: float = 1.0) -> None:
        self.path = heartbeat_dir(data_dir) / f"{service}@{socket.gethostname()}.json"
        self.service, self.limit_s, self.clock, self.min_gap_s = service, limit_s, clock, min_gap_s
        self._last = float("-inf")
        self._lock = threading.Lock()

    def beat(self, force: bool = False, **detail: Any) -> None:
        """Record a success now (at most once per `min_gap_s` unless forced); a full disk only costs a log line."""
        now = self.clock()
        with self._lock:
            if not force and now - self._last < self.min_gap_s:
                return
            self._last = now
        body = {"service": self.service, "at": now, "limit_s": self.limit_s, "pid": os.getpid(), "detail": detail}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{threading.get_ident()}.tmp")
            tmp.write_bytes(orjson.dumps(body))
            tmp.replace(self.path)
        except OSError as e:
            event(logging.getLogger("orchard.heartbeat"), "heartbeat_write_failed", logging.WARNING, error=str(e))


def read_beat(data_dir: Path, service: str, host: str | None = None) -> Beat | None:
    """The service's heartbeat on this host (or the named one); None when it never beat or the file is unreadable."""
    path = heartbeat_dir(data_dir) / f"{service}@{host or socket.gethostname()}.json"
    try:
        raw = orjson.loads(path.read_bytes())
        return Beat(raw["service"], float(raw["at"]), float(raw["limit_s"]), int(raw["pid"]),
                    dict(raw.get("detail") or {}))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
