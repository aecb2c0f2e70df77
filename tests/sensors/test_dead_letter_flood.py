"""One broken device cannot grow the records DB without bound: 10,000 bad 64 KiB payloads (655 MB) leave a
records DB of a few hundred kilobytes, and every refused message is still accounted for: kept, or counted in a
summary letter per device and minute."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchard.records import Records
from orchard.settings import Settings
from orchard.store import open_store
from sensors.payload import MAX_PAYLOAD
from sensors.spool import Spool
from sensors.writer import BatchWriter

NS = 1_000_000_000
LIMIT_BYTES = 2_000_000  # the stated bound for this flood (10,000 x 64 KiB over five minutes)


def bad_payload(k: int) -> bytes:
    """Valid JSON of exactly 64 KiB whose reading is not a number."""
    head = b'{"seq": %d, "readings": {"air_temp_c": "' % k
    return head + b"x" * (MAX_PAYLOAD - len(head) - 3) + b'"}}'


@pytest.fixture
def writer(tmp_path: Path) -> BatchWriter:
    s = Settings(data_dir=tmp_path, store_url=f"sqlite:///{tmp_path}/ts.sqlite",
                 unknown_devices="accept")  # type: ignore[arg-type]
    return BatchWriter(s, open_store(s.store_url), Records.open(s), Spool(tmp_path / "spool"))


def test_a_flood_of_bad_payloads_keeps_the_records_db_small(tmp_path: Path, writer: BatchWriter) -> None:
    now = [1_800_000_000 * NS]
    writer.throttle.clock = lambda: now[0]
    n, per_batch = 10_000, 200
    assert len(bad_payload(0)) == MAX_PAYLOAD
    for start in range(0, n, per_batch):
        writer.handle([("orchard/sunzigou/p01/broken/telemetry", bad_payload(k), now[0])
                       for k in range(start, start + per_batch)])
        now[0] += 6 * NS  # 50 batches over five minutes
    now[0] += 60 * NS
    writer.tick(final=True)  # the last window's summary
    writer.records.engine.dispose()

    size = sum(p.stat().st_size for p in tmp_path.glob("records.sqlite*"))
    letters = writer.records.dead_letters(device="broken", limit=100_000)
    kept = [x for x in letters if not x.letter.reason.startswith("throttled")]
    summaries = [x for x in letters if x.letter.reason.startswith("throttled")]
    counted = sum(int(re.match(r"throttled: (\d+) more", x.letter.reason)[1]) for x in summaries)  # type: ignore[index]
    print(f"records DB {size / 1e6:.2f} MB after {n} x {MAX_PAYLOAD} B; kept {len(kept)}, "
          f"counted {counted} in {len(summaries)} summaries")
    assert size < LIMIT_BYTES
    assert len(kept) + counted == n  # nothing dropped silently
    assert len(kept) == 60 * len(summaries)  # a minute's allowance kept per window, the rest counted
    assert {len(x.letter.payload) for x in kept} == {4096}
    assert {x.letter.payload_size for x in kept} == {MAX_PAYLOAD}
    assert all(len(x.letter.payload_sha256 or "") == 64 for x in kept)
    assert writer.counters.throttled == counted


def test_a_held_message_keeps_its_whole_payload(writer: BatchWriter, tmp_path: Path) -> None:
    """Held readings of a device waiting for approval are replayed later: never cut."""
    from orchard.models import DeadLetter

    letter = DeadLetter(1, "t", b"y" * 10_000, "held_unknown_device: waiting", "new-dev")
    kept = writer._bounded([(letter, True), (letter, False)])
    assert [len(x.payload) for x, _ in kept] == [10_000, 4096]
