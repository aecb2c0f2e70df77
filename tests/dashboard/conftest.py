"""Seeded stores for the dashboard tests: the simulator's history written to SQLite and to a real InfluxDB."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from orchard.localservers import InfluxDB
from orchard.settings import Settings
from orchard.site import site_for
from sensors.simulate import Generator, backfill, make_site, register
from tests.conftest import Seeded, influx_url, unique


def seed(data_dir: Path, store_url: str, days: float, end_s: float) -> Seeded:
    settings = Settings(store_url=store_url, data_dir=data_dir)
    # Without the simulator's faults: a dropout or a flaky device falling silent at the wrong minute would make
    # "how many are online" depend on the time of day the tests run.
    devices = [replace(d, faults=frozenset()) for d in make_site(24, 1, site_for(settings))]
    register(devices, settings)
    if days:
        backfill(settings, devices, Generator(1, 60), days, end_s)
    return Seeded(data_dir, store_url)


@pytest.fixture(scope="session")
def fresh_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    d = tmp_path_factory.mktemp("fresh")
    return seed(d, f"sqlite:///{d}/ts.sqlite", 1.2, time.time())


@pytest.fixture(scope="session")
def fresh_influx(tmp_path_factory: pytest.TempPathFactory, influx: InfluxDB) -> Seeded:
    d = tmp_path_factory.mktemp("fresh-influx")
    return seed(d, influx_url(influx, unique("dash")), 1.2, time.time())


@pytest.fixture(scope="session")
def stale_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Data that stopped six hours ago."""
    d = tmp_path_factory.mktemp("stale")
    return seed(d, f"sqlite:///{d}/ts.sqlite", 0.5, time.time() - 6 * 3600)


@pytest.fixture
def empty_store(tmp_path: Path) -> Seeded:
    """Registered devices, no readings at all."""
    return seed(tmp_path, f"sqlite:///{tmp_path}/ts.sqlite", 0, time.time())
