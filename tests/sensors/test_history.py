"""The benchmark history writes the series and fields ingest writes, with plausible values."""

from __future__ import annotations

from orchard.store.lineproto import line
from sensors.history import DAY_S, day_lines, history
from sensors.simulate import make_site, sample_points

JULY = 1783641600  # 2026-07-10 00:00 UTC


def shape(text: str) -> tuple[str, frozenset[str]]:
    """(measurement and tags, field names) of one line."""
    prefix, fields, _ = text.rsplit(" ", 2)
    return prefix, frozenset(f.split("=")[0] for f in fields.split(","))


def test_same_series_and_fields_as_ingest() -> None:
    from_ingest = {shape(line(p)) for p in sample_points(1, 24, 600, JULY, JULY + 3600)}
    from_history = {shape(s) for s in day_lines("s", make_site(24, 1), 1, JULY, 600)}
    # Ingest also stores the message sequence number; the history has no messages to number.
    assert from_history == {(prefix, fields - {"seq"}) for prefix, fields in from_ingest}


def test_values_are_plausible_and_on_the_minute() -> None:
    lines = day_lines("s", make_site(10, 3), 3, JULY, 60)
    temps = [float(f.split("=")[1]) for s in lines for f in s.split(" ")[1].split(",") if f.startswith("air_temp_c")]
    assert len(temps) == 5 * 1440
    assert 15 < min(temps) < max(temps) < 42  # a July day in Cangxi
    assert all(int(s.rsplit(" ", 1)[1]) % (60 * 10**9) == 0 for s in lines)


def test_whole_days_up_to_now_and_not_beyond() -> None:
    end = JULY + 5 * 3600 + 30
    days = list(history("s", make_site(4, 1), 1, 3, end))
    stamps = [int(s.rsplit(" ", 1)[1]) for d in days for s in d]
    assert len(days) == 3
    assert min(stamps) == (JULY - 2 * DAY_S) * 10**9
    assert max(stamps) == (JULY + 5 * 3600) * 10**9


def test_a_day_of_fifty_devices_has_every_line() -> None:
    site = make_site(50, 1)
    lines = day_lines("s", site, 1, JULY, 60)
    assert len(lines) == 1440 * (25 + 25 * 3)  # stations: one line; probes: battery + two depths
