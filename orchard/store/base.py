"""The time-series store interface: the few operations the dashboard, analytics and ingest need.

Two adapters implement it (InfluxDB v1 HTTP API, SQLite); tests/orchard/test_store_contract.py holds both to it.
Time is always integer nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from orchard.models import FieldValue, Point

Aggregate = Literal["mean", "min", "max", "last", "sum", "count"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "min", "max", "last", "sum", "count")

# Tag filter: tag -> one value, or several (any of them). Keys and values are escaped by the adapters.
Where = Mapping[str, str | Sequence[str]]


class StoreError(Exception):
    """The store refused the request itself (bad query, bad credentials): retrying will not help."""


class StoreUnavailable(StoreError):
    """The store could not be reached or failed temporarily: retry later (ingest spools meanwhile)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    point: Point
    reason: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: int
    rejected: tuple[Rejected, ...] = ()


@dataclass(frozen=True, slots=True)
class LatestValue:
    """The newest value of one field in one series."""

    tags: Mapping[str, str]
    field: str
    time_ns: int
    value: FieldValue


@dataclass(frozen=True, slots=True)
class Row:
    """One timestamp of one series (raw) or of one group (aggregated).

    For aggregates ``values`` is keyed ``"<field>.<fn>"`` (``"air_temp_c.mean"``); empty results are absent.
    """

    time_ns: int
    tags: Mapping[str, str]
    values: Mapping[str, FieldValue] = field(default_factory=dict)


class TimeSeriesStore(Protocol):
    def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""

    def ensure_ready(self) -> None:
        """Create the database/schema when missing."""

    def write(self, points: Sequence[Point]) -> WriteResult:
        """Write points; the same series and timestamp twice is one point. Bad points are returned, not lost
        with the good ones. Raises StoreUnavailable when nothing could be written."""

    def latest(
        self, measurement: str, fields: Sequence[str], where: Where | None = None, since_ns: int | None = None
    ) -> list[LatestValue]:
        """The newest value of each field in each series (one entry per series and field)."""

    def aggregate(
        self,
        measurement: str,
        fields: Sequence[str],
        fns: Sequence[Aggregate],
        start_ns: int,
        end_ns: int,
        every_ns: int | None = None,
        group_by: Sequence[str] = (),
        where: Where | None = None,
        offset_ns: int = 0,
        at_least: float | None = None,
    ) -> list[Row]:
        """Buckets of ``every_ns`` (epoch-aligned, shifted by ``offset_ns``) over [start, end), one row per
        bucket and group; with every_ns None one bucket for the whole range, stamped ``start_ns``. With
        ``at_least`` (one field only) only the values at or above it count: how long a reading spent above a
        threshold; a bucket with none is missing."""

    def range(
        self,
        measurement: str,
        fields: Sequence[str],
        start_ns: int,
        end_ns: int,
        where: Where | None = None,
    ) -> list[Row]:
        """Raw rows over [start, end), ordered by series then time; ``tags`` holds every tag of the series."""

    def tag_values(self, measurement: str, key: str, where: Where | None = None) -> list[str]:
        """Distinct values of one tag, sorted."""

    def measurements(self) -> list[str]:
        """Every measurement that holds data, sorted (for backups)."""

    def field_keys(self, measurement: str) -> list[str]:
        """Every field of a measurement, sorted."""

    def time_bounds(self, measurement: str) -> tuple[int, int] | None:
        """The first and last timestamp of a measurement; None when it is empty."""

    def close(self) -> None: ...


def check_at_least(fields: Sequence[str], at_least: float | None) -> None:
    if at_least is not None and len(fields) != 1:
        raise ValueError("at_least filters the values of one field: ask for one field at a time")


def bucket_start(time_ns: int, every_ns: int, offset_ns: int = 0) -> int:
    """Epoch-aligned bucket start, as InfluxQL's GROUP BY time(every, offset)."""
    return (time_ns - offset_ns) // every_ns * every_ns + offset_ns


def matches_nothing(where: Where | None) -> bool:
    """A filter with an empty list of allowed values selects no series at all."""
    return any(not values for _, values in where_items(where))


def where_items(where: Where | None) -> list[tuple[str, list[str]]]:
    """Normalise a tag filter to (tag, [values]) pairs."""
    if not where:
        return []
    return [(k, [v] if isinstance(v, str) else list(v)) for k, v in where.items()]
