"""Every shipped device profile against the vendor's own published examples: each example decodes to the readings
its profile states (table-driven over sensors/profiles/*.toml), and the profile files themselves are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensors.profiles import DecodeError, ProfileError, load, profiles
from sensors.profiles.modbus import crc16

EXAMPLES = [(p.id, i) for p in profiles().values() for i in range(len(p.examples))]


@pytest.mark.parametrize(("profile_id", "n"), EXAMPLES, ids=[f"{p}-{n}" for p, n in EXAMPLES])
def test_every_published_example_gives_its_readings(profile_id: str, n: int) -> None:
    p = profiles()[profile_id]
    ex = p.examples[n]
    if ex.error:
        with pytest.raises(DecodeError, match=ex.error):
            p.decode(ex.payload)
        return
    got = p.decode(ex.payload)
    assert got.readings == pytest.approx(ex.readings), got
    assert sorted(got.depths) == sorted(int(d) for d in ex.depths), got
    for depth, readings in ex.depths.items():
        assert got.depths[int(depth)] == pytest.approx(readings), (depth, got)
    for name in ex.refused:
        assert any(name in problem for problem in got.problems), got.problems
    assert len(got.problems) == len(ex.refused), got.problems
    assert sorted(got.ignored) == sorted(ex.ignored)
    assert sorted(got.unmapped) == sorted(ex.unmapped)


def test_at_least_twenty_models_ship() -> None:
    shipped = profiles()
    assert len(shipped) >= 20, sorted(shipped)
    assert len({(p.vendor, p.model) for p in shipped.values()}) == len(shipped)
    assert sum(p.kind == "modbus" for p in shipped.values()) >= 2


def test_no_soil_reading_is_ever_air_temperature() -> None:
    """A soil probe's 'temperature' is soil_temp_c: the frost rules read air_temp_c."""
    for p in profiles().values():
        soil = any(m.reading.startswith("soil_") for m in (p.modbus.registers if p.modbus else p.fields))
        air = {m.reading for m in (p.modbus.registers if p.modbus else p.fields)} & {"air_temp_c", "rh_pct"}
        if soil and air:
            pytest.fail(f"{p.id} maps both soil and air readings: check which probe is which")


@pytest.mark.parametrize(("text", "says"), [
    ('id = "x-y"', "Field required"),
    ('id = "a-b"\nvendor="v"\nmodel="m"\nkind="decoded"\ndescription="d"\nsource="s"\n'
     '[[fields]]\npath="t"\nreading="temperature"\n[[examples]]\ndescription="e"\nsource="s"\npayload={t=1}',
     "'temperature' is not a canonical reading"),
    ('id = "a-b"\nvendor="v"\nmodel="m"\nkind="modbus"\ndescription="d"\nsource="s"\n'
     '[[fields]]\npath="t"\nreading="air_temp_c"\n[[examples]]\ndescription="e"\nsource="s"\npayload="00"',
     "a modbus profile has a \\[modbus\\] table and no fields"),
    ("not toml [", "not TOML"),
])
def test_a_broken_profile_file_is_named_with_its_mistake(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "a-b.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=says):
        load(path)


def test_the_modbus_crc_is_the_standard_one() -> None:
    """The check value of CRC-16/MODBUS over "123456789" is 0x4B37 (the CRC catalogue's definition)."""
    assert crc16(b"123456789") == 0x4B37
