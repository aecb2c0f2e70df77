"""The fast serializer must give exactly the bytes of influxdb-client's Point."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point as ClientPoint

from orchard.models import Point
from orchard.store.lineproto import line, lines

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)
tag_values = names.filter(lambda s: not s.endswith("\\"))  # Point pads a trailing backslash; both do, tested below
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=20),
)


def reference(p: Point) -> str:
    cp = ClientPoint(p.measurement).time(p.time_ns)
    for k, v in p.tags.items():
        cp.tag(k, v)
    for k, v in p.fields.items():
        cp.field(k, v)
    return cp.to_line_protocol()


@settings(max_examples=500, deadline=None)
@given(
    measurement=names.filter(lambda s: not s.startswith("#")),
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, values, min_size=1, max_size=8),
    t=st.integers(min_value=0, max_value=2**62),
)
def test_same_bytes_as_influxdb_client_point(
    measurement: str, tags: dict[str, str], fields: dict[str, object], t: int
) -> None:
    p = Point(measurement, tags, fields, t)  # type: ignore[arg-type]
    assert line(p) == reference(p)


def test_typical_telemetry_point() -> None:
    p = Point(
        "telemetry",
        {"site": "sunzigou", "plot": "p03", "device": "ws-03"},
        {"air_temp_c": 3.0, "rh_pct": 91.25, "seq": 12, "ok": True},
        1_775_000_000_000_000_000,
    )
    assert line(p) == "telemetry,device=ws-03,plot=p03,site=sunzigou air_temp_c=3,ok=true,rh_pct=91.25,seq=12i " \
        "1775000000000000000"
    assert line(p) == reference(p)


def test_trailing_backslash_in_tag_value_padded_like_point() -> None:
    p = Point("m", {"t": "ends\\"}, {"f": 1.0}, 1)
    assert line(p) == reference(p) == "m,t=ends\\  f=1 1"


def test_lines_skips_points_without_fields() -> None:
    a = Point("m", {}, {"f": 1.5}, 1)
    b = Point("m", {}, {"f": float("nan")}, 2)
    assert lines([a, b]) == "m f=1.5 1"
