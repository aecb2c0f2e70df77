"""What only the SQLite adapter promises: one writer process and several reader processes at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from orchard.models import Point
from orchard.store.sqlite import SQLiteStore

T0 = 1_775_000_000_000_000_000

READER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from orchard.store.sqlite import SQLiteStore
    s = SQLiteStore(Path(sys.argv[1]))
    seen = 0
    deadline = time.monotonic() + 60
    while seen < int(sys.argv[2]) and time.monotonic() < deadline:
        rows = s.aggregate("m", ["f"], ["count"], 0, 2**62)
        n = rows[0].values["f.count"] if rows else 0
        assert n >= seen, (n, seen)  # readers never see a count go back: each batch commits whole
        seen = n
    print(seen)
    """
)


def test_one_writer_and_three_reader_processes(tmp_path: Path) -> None:
    path = tmp_path / "ts.sqlite"
    writer = SQLiteStore(path)
    total = 20_000
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(path), str(total)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for b in range(0, total, 500):
        writer.write([Point("m", {"d": str(i % 5)}, {"f": float(i)}, T0 + i) for i in range(b, b + 500)])
    outs = [r.communicate(timeout=90)[0].strip() for r in readers]
    assert all(r.returncode == 0 for r in readers)
    assert outs == [str(total)] * 3


def test_wal_mode_is_on(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "ts.sqlite")
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
