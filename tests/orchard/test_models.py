"""What crosses a boundary: states are StrEnums equal to the strings stored and sent, and the frozen models'
mappings cannot be changed behind their back."""

from __future__ import annotations

import json
import pickle

import orjson
import pytest

from orchard.models import AlarmAction, AlarmEvent, Device, DeviceStatus, Severity, Signal


def signal(**details: object) -> Signal:
    return Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text", details, "p01")  # type: ignore[arg-type]


def test_a_state_from_outside_becomes_its_enum_and_a_wrong_one_is_refused() -> None:
    s = signal()
    assert s.severity is Severity.CRITICAL and s.severity == "critical" and s.severity.rank == 3
    assert Device("ws-p01", "sunzigou", "p01", "pending").status is DeviceStatus.PENDING  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'severe' is not a valid Severity"):
        Signal("sunzigou", "plot:p01", "spring_frost", "severe", "alarm.x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AlarmEvent(1, 0, "system", "deleted", {})  # type: ignore[arg-type]


@pytest.mark.parametrize("change", [
    lambda m: m.__setitem__("temp_c", 5.0),
    lambda m: m.update(temp_c=5.0),
    lambda m: m.pop("temp_c"),
    lambda m: m.clear(),
    lambda m: m.setdefault("x", 1),
    lambda m: m.__delitem__("temp_c"),
], ids=["set", "update", "pop", "clear", "setdefault", "del"])
def test_a_frozen_models_mapping_cannot_be_changed_in_place(change: object) -> None:
    given = {"temp_c": -2.1}
    s = signal(**given)
    with pytest.raises(TypeError, match="read-only"):
        change(s.details)  # type: ignore[operator]
    given["temp_c"] = 9.9  # nor through the dict it was made from
    assert s.details == {"temp_c": -2.1}


def test_a_frozen_mapping_still_serialises_as_a_dict() -> None:
    s = signal(temp_c=-2.1, plot="p01")
    assert orjson.loads(orjson.dumps(s.details)) == {"temp_c": -2.1, "plot": "p01"}
    assert json.loads(json.dumps(s.details)) == {"temp_c": -2.1, "plot": "p01"}
    again = pickle.loads(pickle.dumps(s))
    assert again == s and again.details == {"temp_c": -2.1, "plot": "p01"}
    both = {"severity": s.severity, "action": AlarmAction.ACKED}
    assert orjson.dumps(both) == b'{"severity":"critical","action":"acked"}'
