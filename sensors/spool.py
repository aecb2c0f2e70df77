"""A local disk spool for batches the store could not take: fsynced before the MQTT ack, replayed in order.

One file per batch, named by a growing number, written to a temp name, fsynced and renamed, so a crash leaves
either the whole batch or nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from orchard.models import Point


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):  # a batch cut off mid-write was never acked: drop it
            stale.unlink()
        found = list(directory.glob("*.jsonl"))
        self._next = max((int(p.stem) for p in found), default=0) + 1
        self._pending = len(found)  # kept in memory: ingest asks before every batch

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("*.jsonl")) if self._pending else []

    def __len__(self) -> int:
        return self._pending

    def append(self, points: Sequence[Point]) -> Path:
        path = self.dir / f"{self._next:012d}.jsonl"
        self._next += 1
        tmp = path.with_suffix(".tmp")
        body = b"\n".join(orjson.dumps([p.measurement, p.tags, p.fields, p.time_ns]) for p in points)
        with tmp.open("wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(path)
        self._pending += 1
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        return path

    @staticmethod
    def read(path: Path) -> list[Point]:
        return [Point(*orjson.loads(line)) for line in path.read_bytes().splitlines() if line]

    def remove(self, path: Path) -> None:
        if path.exists():
            path.unlink()
            self._pending -= 1
