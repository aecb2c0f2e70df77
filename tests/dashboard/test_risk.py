"""A plot's code comes from its active crop alarms: the worst wins; device alarms and info do not colour it;
no recent data is grey, never green."""

from __future__ import annotations

import pytest

from dashboard.risk import plot_risk
from orchard.models import Alarm

T = 1_773_000_000 * 10**9


def alarm(type_: str, severity: str, plot: str = "p01", cleared: bool = False) -> Alarm:
    return Alarm(1, "s", f"plot:{plot}", type_, severity, plot, None, T, T, T if cleared else None, None, None, None,
                 f"alarm.{type_}_text", {})


@pytest.mark.parametrize(("alarms", "fresh", "level"), [
    ([], True, "green"),
    ([], False, "unknown"),
    ([alarm("spring_frost", "critical")], True, "red"),
    ([alarm("heat", "major")], True, "red"),
    ([alarm("psa_risk", "warning")], True, "yellow"),
    ([alarm("psa_risk", "warning"), alarm("wind", "major")], True, "red"),
    ([alarm("spring_frost", "critical")], False, "red"),  # an alarm raised before the data stopped still stands
    ([alarm("spring_frost", "critical", cleared=True)], True, "green"),
    ([alarm("spring_frost", "critical", plot="p02")], True, "green"),
    ([alarm("device_offline", "warning")], True, "green"),
    ([alarm("spike", "info")], True, "green"),
])
def test_plot_code(alarms: list[Alarm], fresh: bool, level: str) -> None:
    assert plot_risk("p01", alarms, fresh).level == level


def test_the_alarms_behind_the_code_are_kept_for_the_map() -> None:
    r = plot_risk("p01", [alarm("psa_risk", "warning"), alarm("device_offline", "warning")], True)
    assert [a.type for a in r.alarms] == ["psa_risk"]
