"""Seeded stores for the dashboard tests: the simulator's history written to SQLite and to a real InfluxDB."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.servers import InfluxDB
from orchard.records import Records
from orchard.records.lots import Lot, Lots
from orchard.settings import Settings
from orchard.site import site_for
from orchard.store import open_store
from orchard.store.writer import PointWriter
from sensors.simulate import Generator, backfill, make_site, register
from tests.conftest import Seeded, influx_url, unique
from video.grading.service import LineWorker

NS = 1_000_000_000


def grade(seeded: Seeded, plot: str = "p03", frames: int = 60, end: bool = False, note: str = "") -> Lot:
    """A lot of a plot's fruit through the real grader on line-1 over the last frames × 5 s (simulated time) before
    the seeded clock (now, when it has none)."""
    settings = Settings(store_url=seeded.store_url, data_dir=seeded.data_dir)
    site = site_for(settings)
    records = Records.open(settings)
    store = open_store(settings.store_url)
    lots = Lots(records, site)
    start = (seeded.now_ns if seeded.now_ns is not None else time.time_ns()) - frames * 5 * NS
    clock = iter(range(start, start + (frames + 200) * 5 * NS, 5 * NS))
    lot = lots.start("line-1", plot, "tester", note=note, now_ns=start - NS)
    w = LineWorker(site, site.line("line-1"), settings.grading, lots, PointWriter(store),
                   settings.line_frame("line-1"), clock=lambda: next(clock), lot_check_s=0)
    for _ in range(frames):
        w.step()
    if end:
        lots.end(lot.id, "tester", start + frames * 5 * NS)
    w.finish()
    w.writer.flush()
    store.close()
    found = lots.get(lot.id)
    records.close()
    return found


def seed(data_dir: Path, store_url: str, days: float, end_s: float, now_ns: int | None = None) -> Seeded:
    settings = Settings(store_url=store_url, data_dir=data_dir)
    # Without the simulator's faults: a dropout or a flaky device falling silent at the wrong minute would make
    # "how many are online" depend on the time of day the tests run.
    devices = [replace(d, faults=frozenset()) for d in make_site(24, 1, site_for(settings))]
    register(devices, settings)
    if days:
        backfill(settings, devices, Generator(1, 60), days, end_s)
    return Seeded(data_dir, store_url, now_ns)


def fresh_end() -> tuple[float, int]:
    """The end of a fresh history (the newest reading falls on the whole minute before it) and the dashboard's
    clock, 20 s after that reading."""
    minute = time.time() // 60 * 60
    return minute + 1, int((minute + 20) * NS)


@pytest.fixture(scope="session")
def fresh_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    d = tmp_path_factory.mktemp("fresh")
    return seed(d, f"sqlite:///{d}/ts.sqlite", 1.2, *fresh_end())


@pytest.fixture(scope="session")
def fresh_influx(tmp_path_factory: pytest.TempPathFactory, influx: InfluxDB) -> Seeded:
    d = tmp_path_factory.mktemp("fresh-influx")
    return seed(d, influx_url(influx, unique("dash")), 1.2, *fresh_end())


@pytest.fixture(scope="session")
def stale_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Data that stopped six hours ago."""
    d = tmp_path_factory.mktemp("stale")
    return seed(d, f"sqlite:///{d}/ts.sqlite", 0.5, time.time() - 6 * 3600)


@pytest.fixture
def empty_store(tmp_path: Path) -> Seeded:
    """Registered devices, no readings at all."""
    return seed(tmp_path, f"sqlite:///{tmp_path}/ts.sqlite", 0, time.time())
