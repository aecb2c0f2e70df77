"""Chart helpers: lines break at gaps instead of bridging them; times are drawn as the site's wall clock."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.charts import wall_clock, with_gaps

T0 = pd.Timestamp("2026-03-10 00:00", tz="Asia/Shanghai")


def minutes(*ms: int) -> pd.Series:
    return pd.Series([T0 + pd.Timedelta(minutes=m) for m in ms])


@pytest.mark.parametrize(
    ("at", "max_step_min", "breaks_after"),
    [
        ((0, 1, 2, 3), 3, []),  # evenly spaced: one unbroken line
        ((0, 1, 10, 11), 3, [1]),  # a 9-minute hole
        ((0, 10, 20, 30), 3, [0, 1, 2]),  # every step too long
        ((0, 3, 6), 3, []),  # exactly the allowed step is not a gap
        ((0,), 3, []),  # a single point
        ((), 3, []),  # nothing
    ],
)
def test_with_gaps_breaks_where_data_is_missing(at: tuple[int, ...], max_step_min: int,
                                                breaks_after: list[int]) -> None:
    values = pd.Series([float(i) for i in range(len(at))])
    xs, ys = with_gaps(minutes(*at), values, pd.Timedelta(minutes=max_step_min))
    assert len(xs) == len(ys) == len(at) + len(breaks_after)
    nan_at = list(np.flatnonzero(np.isnan(ys)))
    assert nan_at == [i + 1 + k for k, i in enumerate(breaks_after)]
    for k, i in enumerate(breaks_after):  # the break sits halfway between its neighbours
        mid = xs[i + 1 + k]
        assert xs[i + k] < mid < xs[i + 2 + k]
    assert list(ys[~np.isnan(ys)]) == list(values)


def test_wall_clock_keeps_local_time() -> None:
    xs = wall_clock(minutes(0, 90))
    assert xs.dtype.kind == "M"
    assert str(xs[1]).startswith("2026-03-10T01:30")
