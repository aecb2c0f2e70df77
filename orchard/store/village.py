"""One village's view of a time-series store that several villages share (the county, "1+31+N"): every read of a
measurement that carries the `site` tag is cut to the village, so its p01 is never another village's p01.
Writes pass through (each point names its own site); so do the measurements that belong to no village
(ingest_stats) and reads that name their sites themselves."""

from __future__ import annotations

from collections.abc import Sequence

from orchard.catalogue import TELEMETRY
from orchard.models import CAMERA_MEASUREMENT, FRUIT_MEASUREMENT, LINE_MEASUREMENT, Point
from orchard.store.base import Aggregate, LatestValue, Row, TimeSeriesStore, Where, WriteResult

SITED = frozenset({TELEMETRY, CAMERA_MEASUREMENT, FRUIT_MEASUREMENT, LINE_MEASUREMENT})


class VillageStore:
    def __init__(self, store: TimeSeriesStore, site: str) -> None:
        self.inner, self.site = store, site

    def _where(self, measurement: str, where: Where | None) -> Where | None:
        if measurement not in SITED or (where is not None and "site" in where):
            return where
        return {**(where or {}), "site": [self.site]}

    def ping(self) -> None:
        self.inner.ping()

    def ensure_ready(self) -> None:
        self.inner.ensure_ready()

    def write(self, points: Sequence[Point]) -> WriteResult:
        return self.inner.write(points)

    def latest(self, measurement: str, fields: Sequence[str], where: Where | None = None,
               since_ns: int | None = None) -> list[LatestValue]:
        return self.inner.latest(measurement, fields, self._where(measurement, where), since_ns)

    def aggregate(self, measurement: str, fields: Sequence[str], fns: Sequence[Aggregate], start_ns: int,
                  end_ns: int, every_ns: int | None = None, group_by: Sequence[str] = (), where: Where | None = None,
                  offset_ns: int = 0, at_least: float | None = None) -> list[Row]:
        return self.inner.aggregate(measurement, fields, fns, start_ns, end_ns, every_ns, group_by,
                                    self._where(measurement, where), offset_ns, at_least)

    def range(self, measurement: str, fields: Sequence[str], start_ns: int, end_ns: int,
              where: Where | None = None) -> list[Row]:
        return self.inner.range(measurement, fields, start_ns, end_ns, self._where(measurement, where))

    def tag_values(self, measurement: str, key: str, where: Where | None = None) -> list[str]:
        return self.inner.tag_values(measurement, key, self._where(measurement, where))

    def measurements(self) -> list[str]:
        return self.inner.measurements()

    def field_keys(self, measurement: str) -> list[str]:
        return self.inner.field_keys(measurement)

    def time_bounds(self, measurement: str) -> tuple[int, int] | None:
        return self.inner.time_bounds(measurement)

    def close(self) -> None:
        self.inner.close()
