"""Dead letters within bounds: one broken (or hostile) device cannot grow the records DB without limit.

Per fixed window (a minute), each device may leave `per_device` dead letters and all devices together `total`;
what is over is not kept but counted, and when the window has passed one summary letter per device says how
many were left out, with the first reason. So nothing is dropped silently, and a flood costs one row a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orchard.models import DeadLetter

NS = 1_000_000_000


@dataclass(slots=True)
class _Left:
    count: int = 0
    bytes: int = 0
    first_reason: str = ""
    topic: str = ""
    site: str | None = None
    plot: str | None = None


@dataclass(slots=True)
class LetterThrottle:
    per_device: int
    total: int
    window_s: float = 60.0
    clock: Callable[[], int] = time.time_ns
    _window: int = -1
    _kept: dict[str, int] = field(default_factory=dict)
    _kept_total: int = 0
    _left: dict[str, _Left] = field(default_factory=dict)
    _done: list[DeadLetter] = field(default_factory=list)

    def _roll(self) -> None:
        window = int(self.clock() // int(self.window_s * NS))
        if window != self._window:
            end_ns = window * int(self.window_s * NS)
            for device, left in self._left.items():
                self._done.append(DeadLetter(
                    end_ns, left.topic,
                    b"", f"throttled: {left.count} more dead letters ({left.bytes} bytes) from {device or '?'} in "
                    f"{self.window_s:.0f} s were counted, not kept; the first was: {left.first_reason[:200]}",
                    device or None, left.site, left.plot))
            self._window, self._kept, self._kept_total, self._left = window, {}, 0, {}

    def admit(self, letter: DeadLetter) -> bool:
        """Keep this letter (True), or count it into its device's summary (False)."""
        self._roll()
        device = letter.device or ""
        if self._kept.get(device, 0) < self.per_device and self._kept_total < self.total:
            self._kept[device] = self._kept.get(device, 0) + 1
            self._kept_total += 1
            return True
        left = self._left.setdefault(device, _Left(topic=letter.topic, site=letter.site, plot=letter.plot,
                                                   first_reason=letter.reason))
        left.count += 1
        left.bytes += letter.payload_size or len(letter.payload)
        return False

    def summaries(self) -> list[DeadLetter]:
        """The summary letters of windows that have ended (each once)."""
        self._roll()
        done, self._done = self._done, []
        return done


@dataclass(slots=True)
class NewDeviceGate:
    """At most `per_hour` device ids ingest has never seen may appear in an hour (each counted once, however
    often it sends). Beyond that their messages are dead letters (themselves throttled above), not new rows in
    the registry: a broken gateway or a stolen service account inventing ids cannot fill the devices page.
    The broker does not tell ingest who published a message, so the limit is per ingest process."""

    per_hour: int
    clock: Callable[[], int] = time.time_ns
    _seen: dict[str, int] = field(default_factory=dict)  # device -> when it was first let in

    def admit(self, device: str) -> bool:
        now = self.clock()
        if device in self._seen:
            return True
        hour_ago = now - 3600 * NS
        for d in [d for d, t in self._seen.items() if t < hour_ago]:
            del self._seen[d]
        if len(self._seen) >= self.per_hour:
            return False
        self._seen[device] = now
        return True
