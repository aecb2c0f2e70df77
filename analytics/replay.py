"""Backtest before changing a rule: the rule pack run over stored history with an injected clock, what it would
have raised compared with what was raised.

The engine is the real one, reading the real time-series store, with its alarms kept in a records DB of its own
in a temporary folder (the village's records are only read: the alarms raised then, to compare). What a replay
cannot know is left out, and the report says so: silences and acknowledgements (people's doing), and forecasts
(none are stored), so forecast pre-warnings are not replayed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from analytics.engine import Engine
from analytics.rules import PlotRule, Rule, load, with_settings
from orchard.models import SEVERITIES, Alarm
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.site import Site
from orchard.store import TimeSeriesStore

NS = 1_000_000_000
SAME_WITHIN_S = 1800  # raised this close to each other: the same alarm, not a moved one


class Change(StrEnum):
    SAME = "same"  # raised then, and would be, at about the same time
    MOVED = "moved"  # both, but raised at a different time (earlier or later)
    NEW = "new"  # would be raised, was not
    GONE = "gone"  # was raised, would not be


@dataclass(frozen=True, slots=True)
class Episode:
    """One alarm from raise to clear (None: still active at the end of the span), its worst severity."""

    type: str
    source: str
    plot: str | None
    raised_ns: int
    cleared_ns: int | None
    severity: str
    message: str

    def overlaps(self, other: Episode, end_ns: int) -> bool:
        return self.raised_ns <= (other.cleared_ns or end_ns) and other.raised_ns <= (self.cleared_ns or end_ns)


@dataclass(frozen=True, slots=True)
class Difference:
    change: Change
    would: Episode | None
    was: Episode | None

    @property
    def shift_min(self) -> float | None:
        """Minutes the raise moved (negative: earlier than it was)."""
        if self.would is None or self.was is None:
            return None
        return round((self.would.raised_ns - self.was.raised_ns) / NS / 60, 1)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    start_ns: int
    end_ns: int
    step_s: int
    settings: tuple[str, ...]
    rules: tuple[str, ...]
    would: tuple[Episode, ...]
    was: tuple[Episode, ...]
    differences: tuple[Difference, ...]
    cycles: int
    seconds: float

    def count(self, change: Change) -> int:
        return sum(d.change == change for d in self.differences)


def crop_rules(pack: dict[str, type[Rule]]) -> list[str]:
    return sorted(name for name, cls in pack.items() if issubclass(cls, PlotRule))


def replay(site: Site, store: TimeSeriesStore, start_ns: int, end_ns: int, *, step_s: int = 600,
           rules: Sequence[str] | None = None, sets: Sequence[str] = (), was: Iterable[Alarm] = (),
           work: Path | None = None, progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Cycle the engine every `step_s` from start to end over the store's history, with the rule settings `sets`
    changed (rule.param=value), and compare its alarms with `was` (the alarms the village had then). `rules`:
    the alarm types to replay, by default every crop rule."""
    pack = load()
    names = list(rules) if rules else crop_rules(pack)
    unknown = [n for n in names if n not in pack]
    if unknown:
        raise ValueError(f"unknown rules: {', '.join(unknown)} (known: {', '.join(sorted(pack))})")
    tried = with_settings(site, sets)
    t0 = time.perf_counter()
    episodes: list[Episode] = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        records = Records.in_data_dir(Path(tmp))
        try:
            book = AlarmBook(records)
            engine = Engine(tried, store, records, book, rules={n: pack[n] for n in names})
            open_: dict[tuple[str, str], tuple[Alarm, int, str]] = {}  # raised: (alarm, when, worst severity)
            steps = max(1, (end_ns - start_ns) // (step_s * NS) + 1)
            cycles = 0
            for i in range(steps):
                now = start_ns + i * step_s * NS
                if now > end_ns:
                    break
                for alarm, outcome in engine.cycle(now).changed:
                    if alarm.type not in names:
                        continue
                    key = (alarm.source, alarm.type)
                    if outcome == "raised":
                        open_[key] = (alarm, now, str(alarm.severity))
                    elif key in open_:
                        first, raised, worst = open_.pop(key)
                        worst = max(worst, str(alarm.severity), key=SEVERITIES.index)
                        if outcome == "cleared":
                            episodes.append(_episode(first, raised, now, worst))
                        else:
                            open_[key] = (first, raised, worst)
                cycles += 1
                if progress is not None:
                    progress(i + 1, steps)
            episodes += [_episode(a, raised, None, worst) for a, raised, worst in open_.values()]
        finally:
            records.close()
    before = [Episode(a.type, a.source, a.plot, a.started_ns, a.cleared_ns if a.cleared_ns and a.cleared_ns <= end_ns
                      else None, str(a.severity), a.message) for a in was if a.type in names]
    would = sorted(episodes, key=lambda e: (e.raised_ns, e.source))
    return ReplayResult(start_ns, end_ns, step_s, tuple(sets), tuple(names), tuple(would),
                        tuple(sorted(before, key=lambda e: (e.raised_ns, e.source))),
                        tuple(compare(would, before, end_ns)), cycles, time.perf_counter() - t0)


def _episode(alarm: Alarm, raised_ns: int, cleared_ns: int | None, severity: str) -> Episode:
    return Episode(alarm.type, alarm.source, alarm.plot, raised_ns, cleared_ns, severity, alarm.message)


def compare(would: Sequence[Episode], was: Sequence[Episode], end_ns: int) -> list[Difference]:
    """Each would-be alarm paired with the first alarm of the same source and type it overlaps in time (same
    when raised within half an hour of it, else moved), the rest new or gone; in time order."""
    left = list(was)
    out: list[Difference] = []
    for w in would:
        match = next((b for b in left if b.type == w.type and b.source == w.source and w.overlaps(b, end_ns)), None)
        if match is None:
            out.append(Difference(Change.NEW, w, None))
            continue
        left.remove(match)
        same = abs(w.raised_ns - match.raised_ns) <= SAME_WITHIN_S * NS
        out.append(Difference(Change.SAME if same else Change.MOVED, w, match))
    out += [Difference(Change.GONE, None, b) for b in left]
    return sorted(out, key=lambda d: min(e.raised_ns for e in (d.would, d.was) if e is not None))
