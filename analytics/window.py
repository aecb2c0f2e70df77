"""What the rules read, kept up to date cheaply: the last few hours of raw readings and the last days of hourly
plot means, fetched incrementally (a cycle asks the store only for what is new), and cut by plot or device and
reading once per cycle, so each rule gets its rows without scanning the whole table.

A reading that arrives later than the overlap (10 minutes) behind the newest one the window has seen is missed
by the raw window, and one more than an hour late by the hourly means (the last two completed hours are fetched
again each hour); a restart, or a gap of hours, reads everything afresh.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchard.catalogue import TELEMETRY
from orchard.store import TimeSeriesStore
from orchard.store.base import Where

NS = 1_000_000_000
HOUR = 3600 * NS
LONG = ["time_ns", "plot", "device", "depth_cm", "field", "value"]
HOURLY = ["time_ns", "plot", "field", "mean", "min", "max", "sum"]  # sum: rain totals (over the plot's gauges)
NUMBERS = {"time_ns": "int64", "value": "float64", "mean": "float64", "min": "float64", "max": "float64",
           "sum": "float64"}


def share_field(field: str, at_least: float) -> str:
    """The hourly table's row name for how long a reading stood at or above a threshold in each hour, from the
    readings themselves: in `mean` the hours (the share of the hour's readings at or above it, times the part
    of the hour gone by: 1 for a past hour), in `sum` how many readings were."""
    return f"{field}>={at_least:g}"


def table(records: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """A long table with its number columns typed, empty or not (so tables concatenate without surprises)."""
    df = pd.DataFrame(records, columns=columns)
    return df.astype({c: NUMBERS.get(c, "str") for c in columns})
OVERLAP_NS = 10 * 60 * NS


class Slices:
    """A long table cut by key columns once (one pass); the rows of one key on demand, sorted by time."""

    def __init__(self, df: pd.DataFrame, keys: list[str]) -> None:
        df = df.sort_values([*keys, "time_ns"], ignore_index=True) if not df.empty else df
        raw_index = df.groupby(keys, sort=False).indices if not df.empty else {}
        # The slices keep what rules read; text columns become categories (filtering a frame of string columns
        # costs several times more per row, and rules filter thousands of slices a cycle).
        rest = df[[c for c in df.columns if c not in keys]]
        self.df = rest.astype({c: "category" for c in rest.columns if c not in ("time_ns", "value", "mean", "min",
                                                                                 "max", "sum")})
        # Sorted by the keys, each key's rows are one run: a positional slice (a view) instead of a gather.
        self.bounds = {(k if isinstance(k, tuple) else (k,)): (int(v[0]), int(v[-1]) + 1) for k, v in raw_index.items()}
        self.empty = self.df.iloc[0:0]

        # Plain arrays of the columns rules scan most, for rules that go by numbers rather than frames.
        self.columns = {c: self.df[c].to_numpy() for c in ("time_ns", "value", "depth_cm", "mean", "min", "max",
                                                           "sum") if c in self.df}

    def get(self, *key: str) -> pd.DataFrame:
        b = self.bounds.get(key)
        return self.empty if b is None else self.df.iloc[b[0]:b[1]]

    def arrays(self, *key: str) -> Arrays:
        a, b = self.bounds.get(key, (0, 0))
        depth = self.columns.get("depth_cm")
        return Arrays(self.columns["time_ns"][a:b], self.columns["value"][a:b].astype(float),
                      depth[a:b] if depth is not None else np.full(b - a, "", dtype=object))


    def column(self, name: str, *key: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, that column) of one key's rows, as arrays in time order; empty when the key has none."""
        a, b = self.bounds.get(key, (0, 0))
        if name not in self.columns:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return self.columns["time_ns"][a:b], self.columns[name][a:b].astype(float)


@dataclass(frozen=True, slots=True)
class Arrays:
    """One reading's rows as arrays, in time order: times (ns), values, soil depths ("" when none)."""

    times: np.ndarray
    values: np.ndarray
    depths: np.ndarray

    def by_depth(self) -> Iterator[tuple[str, Arrays]]:
        if len(self.times) == 0:
            return
        if (self.depths == self.depths[0]).all():
            yield str(self.depths[0]), self
            return
        for d in sorted(set(self.depths.tolist())):
            keep = self.depths == d
            yield str(d), Arrays(self.times[keep], self.values[keep], self.depths[keep])


class Readings:
    """One plot's or device's rows of a long table, one reading at a time."""

    def __init__(self, slices: Slices, entity: str | None = None) -> None:
        self.slices, self.entity = slices, entity

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Readings:
        """For a table that holds one plot's or device's rows only (tests, tools)."""
        return cls(Slices(df, ["field"]))

    def of(self, field: str) -> pd.DataFrame:
        return self.slices.get(field) if self.entity is None else self.slices.get(self.entity, field)

    def arrays(self, field: str) -> Arrays:
        return self.slices.arrays(field) if self.entity is None else self.slices.arrays(self.entity, field)

    def arrays_of(self, field: str, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, values of `column`) of one reading: hourly tables have mean, min and max."""
        key = (field,) if self.entity is None else (self.entity, field)
        return self.slices.column(column, *key)


class Window:
    def __init__(self, store: TimeSeriesStore, raw_fields: Sequence[str], hourly_fields: Sequence[str],
                 raw_hours: float, hourly_hours: int, shares: Sequence[tuple[str, float]] = ()) -> None:
        self.store = store
        self.raw_fields, self.hourly_fields = list(raw_fields), list(hourly_fields)
        self.shares = sorted(set(shares))  # (field, threshold): the hourly share of readings at or above it
        self.raw_ns, self.hourly_hours = int(raw_hours * HOUR), hourly_hours
        self.raw = table([], LONG)
        self.raw_until = 0
        self.past_hours = table([], HOURLY)
        self.past_hour_start = 0

    def refresh(self, now_ns: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(raw readings of the last raw_hours, hourly plot means of the last hourly_hours) as of now."""
        start = now_ns - self.raw_ns
        since = max(start, self.raw_until - OVERLAP_NS)
        fresh = self._raw(since, now_ns + 1)
        kept = self.raw[(self.raw["time_ns"] >= start) & (self.raw["time_ns"] < since)]
        self.raw = pd.concat([kept, fresh], ignore_index=True) if not kept.empty else fresh
        self.raw_until = max(self.raw_until, int(fresh["time_ns"].max()) if not fresh.empty else since)

        hour = now_ns // HOUR * HOUR
        if hour - self.past_hour_start > 3 * HOUR or hour < self.past_hour_start:  # first run, or a long gap
            self.past_hours = self._hourly(hour - self.hourly_hours * HOUR, hour)
            self.past_hour_start = hour
        elif hour != self.past_hour_start:  # a new hour: add the hours just completed, drop the oldest
            done = self._hourly(self.past_hour_start - HOUR, hour)  # the hour before again: its late readings
            kept = self.past_hours[(self.past_hours["time_ns"] >= hour - self.hourly_hours * HOUR)
                                   & (self.past_hours["time_ns"] < self.past_hour_start - HOUR)]
            self.past_hours = pd.concat([kept, done], ignore_index=True)
            self.past_hour_start = hour
        current = self._current_hour(hour, now_ns) if set(self.hourly_fields) <= set(self.raw_fields) else \
            self._hourly(hour, now_ns + 1)
        hourly = pd.concat([self.past_hours, current], ignore_index=True) if not current.empty else self.past_hours
        return self.raw, hourly

    def read(self, now_ns: int, where: Where) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The same two tables for some plots or devices only, straight from the store (the cache untouched)."""
        hour = now_ns // HOUR * HOUR
        return (self._raw(now_ns - self.raw_ns, now_ns + 1, where),
                self._hourly(hour - self.hourly_hours * HOUR, now_ns + 1, where))

    def _current_hour(self, hour: int, now_ns: int) -> pd.DataFrame:
        """The hour under way, from the raw readings already here (as InfluxDB's mean over all of a plot's points
        would give it) instead of asking the store to scan it again every cycle."""
        rows = self.raw[(self.raw["time_ns"] >= hour) & self.raw["field"].isin(self.hourly_fields)]
        if rows.empty:
            return table([], HOURLY)
        agg = rows.groupby(["plot", "field"], observed=True)["value"].agg(["mean", "min", "max", "sum"]).reset_index()
        agg.insert(0, "time_ns", hour)
        records = list(agg[HOURLY].itertuples(index=False, name=None))
        for f, at_least in self.shares:
            mine = rows[rows["field"] == f]
            if not mine.empty:
                hot = (mine["value"] >= at_least).groupby(mine["plot"], observed=True).agg(["mean", "sum"])
                gone = min(1.0, (now_ns - hour) / HOUR)
                records += [(hour, plot, share_field(f, at_least), float(m) * gone, float("nan"), float("nan"),
                             float(n)) for plot, (m, n) in hot.iterrows()]
        return table(records, HOURLY)

    def _raw(self, start: int, end: int, where: Where | None = None) -> pd.DataFrame:
        rows = self.store.range(TELEMETRY, self.raw_fields, start, end, where=where)
        wanted = set(self.raw_fields)
        records: list[tuple[Any, ...]] = [
            (r.time_ns, r.tags.get("plot", ""), r.tags.get("device", ""), r.tags.get("depth_cm") or "", f, v)
            for r in rows for f, v in r.values.items() if f in wanted]
        df = pd.DataFrame(records, columns=LONG)
        df["value"] = pd.to_numeric(df["value"], errors="coerce")  # a string field value is not a reading
        return table([], LONG) if df.empty else df.dropna(subset=["value"]).astype({"value": "float64"})

    def _hourly(self, start: int, end: int, where: Where | None = None) -> pd.DataFrame:
        rows = self.store.aggregate(TELEMETRY, self.hourly_fields, ["mean", "min", "max", "sum", "count"], start, end,
                                    HOUR, ["plot"], where=where)
        records = [(r.time_ns, r.tags.get("plot", ""), f, r.values.get(f"{f}.mean"), r.values.get(f"{f}.min"),
                    r.values.get(f"{f}.max"), r.values.get(f"{f}.sum"))
                   for r in rows for f in self.hourly_fields if f"{f}.mean" in r.values]
        for f, at_least in self.shares:
            hot = {(r.tags.get("plot", ""), r.time_ns): float(r.values.get(f"{f}.count") or 0)
                   for r in self.store.aggregate(TELEMETRY, [f], ["count"], start, end, HOUR, ["plot"], where=where,
                                                 at_least=at_least)}
            for r in rows:
                n = float(r.values.get(f"{f}.count") or 0)
                if n:
                    k = hot.get((r.tags.get("plot", ""), r.time_ns), 0.0)
                    gone = min(1.0, (end - 1 - r.time_ns) / HOUR)  # the hour under way counts what has gone by
                    records.append((r.time_ns, r.tags.get("plot", ""), share_field(f, at_least), k / n * gone,
                                    float("nan"), float("nan"), k))
        return table(records, HOURLY)
