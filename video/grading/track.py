"""Following each fruit along the belt, so a fruit seen in many frames is counted and graded once.

Every fruit moves with the belt: the same advance per frame for all, nobody overtakes. A track takes the
detection nearest to where the belt should have carried it; the belt's advance is learnt from the matches. A
track that finds nothing for `max_missed` frames has left the picture and is graded from all its whole views:
the length as their median, the equatorial diameters as the widest and narrowest the rolling fruit showed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from video.grading.results import FrameResult, FruitView, GradedFruit


@dataclass
class Track:
    id: int
    views: list[FruitView] = field(default_factory=list)
    last_x: float = 0.0
    last_y: float = 0.0
    missed: int = 0


Finish = Callable[[int, list[FruitView]], GradedFruit | None]


class Tracker:
    def __init__(self, finish: Finish, max_missed: int = 1) -> None:
        self.finish, self.max_missed = finish, max_missed
        self.tracks: list[Track] = []
        self.advance: float | None = None  # px per frame, learnt
        self.next_id = 0

    def _expected(self, t: Track) -> float:
        return t.last_x + (self.advance or 0.0) * (t.missed + 1)

    def _learn_advance(self, free: list[FruitView], size: float) -> None:
        """The belt's advance per frame, before any match: the displacement most pairs of old and new positions
        in the same lane agree on (the wrong pairs scatter, the right ones pile up)."""
        moves = [v.x_px - t.last_x for t in self.tracks for v in free
                 if abs(v.y_px - t.last_y) < 0.35 * size and 0 < v.x_px - t.last_x < 1.5 * size]
        if len(moves) >= 3:
            hist, edges = np.histogram(moves, bins=max(1, int(1.5 * size / 4)), range=(0, 1.5 * size))
            peak = int(np.argmax(hist))
            near = [m for m in moves if edges[peak] - 4 <= m <= edges[peak + 1] + 4]
            if hist[peak] >= 2:
                self.advance = statistics.median(near)

    def update(self, frame: FrameResult) -> list[GradedFruit]:
        """Match this frame's fruit to the tracks; return the fruit whose tracks ended."""
        free = list(frame.fruit)
        size = statistics.median([v.length_mm for v in free]) * frame.px_per_mm if free else 100.0
        if self.advance is None:
            self._learn_advance(free, size)
            if self.advance is None:  # not yet (the belt is starting to fill): follow from this frame on
                self.tracks = [self._new(v) for v in free]
                return []
        pairs = []
        for t in self.tracks:
            for i, v in enumerate(free):
                dy = abs(v.y_px - t.last_y)
                dx = v.x_px - self._expected(t)
                if dy > 0.35 * size or abs(dx) > 0.45 * size:
                    continue
                pairs.append((math.hypot(dx, dy), t.id, t, i))
        pairs.sort(key=lambda p: p[0])
        used_t: set[int] = set()
        used_v: set[int] = set()
        moves = []
        for _, tid, t, i in pairs:
            if tid in used_t or i in used_v:
                continue
            used_t.add(tid)
            used_v.add(i)
            v = free[i]
            moves.append((v.x_px - t.last_x) / (t.missed + 1))
            t.views.append(v)
            t.last_x, t.last_y, t.missed = v.x_px, v.y_px, 0
        if moves:
            self.advance = 0.7 * self.advance + 0.3 * statistics.median(moves)
        done: list[GradedFruit] = []
        alive = []
        for t in self.tracks:
            if t.id in used_t:
                alive.append(t)
                continue
            t.missed += 1
            if t.missed > self.max_missed:
                done += self._close(t)
            else:
                alive.append(t)
        alive += [self._new(v) for i, v in enumerate(free) if i not in used_v]
        self.tracks = alive
        return done

    def _new(self, v: FruitView) -> Track:
        self.next_id += 1
        return Track(self.next_id - 1, [v], v.x_px, v.y_px)

    def _close(self, t: Track) -> list[GradedFruit]:
        graded = self.finish(t.id, t.views)
        if graded is None:
            return []
        return [graded]

    def flush(self) -> list[GradedFruit]:
        """The end of the run: grade what is still in view."""
        out = [g for t in self.tracks for g in self._close(t)]
        self.tracks = []
        return out
