"""Time-series store: the interface and its two adapters. ``open_store(url)`` picks one by URL."""

from __future__ import annotations

from orchard.settings import parse_store_url
from orchard.store.base import (
    AGGREGATES,
    Aggregate,
    LatestValue,
    Rejected,
    Row,
    StoreError,
    StoreUnavailable,
    TimeSeriesStore,
    Where,
    WriteResult,
)

__all__ = [
    "AGGREGATES",
    "Aggregate",
    "LatestValue",
    "Rejected",
    "Row",
    "StoreError",
    "StoreUnavailable",
    "TimeSeriesStore",
    "Where",
    "WriteResult",
    "open_store",
]


def open_store(url: str, site: str | None = None) -> TimeSeriesStore:
    """Build the adapter for ORCHARD_STORE_URL, with every read cut to one village when `site` is given (a store
    the county's villages share: orchard/store/village.py). Nothing is contacted until the first call."""
    if site is not None:
        from orchard.store.village import VillageStore

        return VillageStore(open_store(url), site)
    target = parse_store_url(url)
    if target.kind == "sqlite":
        from orchard.store.sqlite import SQLiteStore

        assert target.path is not None
        return SQLiteStore(target.path)
    from orchard.store.influx import InfluxStore

    return InfluxStore(target)
