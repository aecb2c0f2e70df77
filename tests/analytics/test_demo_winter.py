"""The demo on a winter day: the simulator's village (its weather, its faulty devices) through the whole rule
pack with an injected clock. The wall is green: no crop alarm on any plot, where once all twelve were yellow
with twelve identical Psa warnings. The devices the simulator breaks on purpose still raise their alarms."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from analytics.engine import Engine
from orchard.models import DEVICE_TYPES
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.site import SHIPPED, load_site
from orchard.store import open_store
from sensors.simulate import sample_points

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 1_000_000_000
HOUR = 3600


@pytest.mark.slow
@pytest.mark.parametrize("day", ["2026-12-01"])  # the demo as it runs today (2027-01-15 checked green too)
def test_the_demo_wall_on_a_winter_day_is_green(tmp_path: Path, day: str) -> None:
    end = datetime.fromisoformat(f"{day}T16:00").replace(tzinfo=SITE.tz).timestamp()
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.write(sample_points(1, 24, 300, end - 3 * 24 * HOUR, end))  # three days: what the Psa index reads
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    book = AlarmBook(records)
    engine = Engine(SITE, store, records, book)
    raised = []
    for k in range(13):  # every hour of the last half day
        result = engine.cycle(int((end - 12 * HOUR + k * HOUR) * NS))
        raised += [a for a, how in result.changed if how == "raised"]
    crop = [(a.type, a.plot, a.severity) for a in raised if a.type not in DEVICE_TYPES]
    assert crop == [], crop
    assert {a.type for a in raised} & {"device_offline", "stuck_value", "low_battery"}  # the broken ones
    records.close()
