"""`orchard bench dashboard` end to end on a small history: seeds, serves, renders, refreshes, reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.dashboard import run_bench
from bench.servers import InfluxDB
from tests.conftest import influx_url, unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEYS = ("command_center_first_render_s", "environment_first_render_s", "fragment_refresh_s", "influx_floor_s",
        "rss_start_mb", "rss_end_mb")


def test_bench_dashboard_reports_every_figure(influx: InfluxDB, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    result = run_bench(days=2, devices=6, repeat=2, refreshes=4, store_url=influx_url(influx, unique("bench")),
                       work_dir=tmp_path)
    assert all(result[k] > 0 for k in KEYS), result
    assert result["lines_seeded"] == pytest.approx(2 * 1440 * (3 + 3 * 3), rel=0.5)
    # The server really asked InfluxDB: the renders take longer than the bare queries they contain.
    assert result["command_center_first_render_s"] > result["influx_floor_s"]
    assert result["influx_statements"]["command_center"] >= 3
    assert '"fragment_refresh_s"' in capsys.readouterr().out
