"""What the services write is for their own account: the records DB (password hashes, phone numbers) 0600 in a
0700 data directory, backups 0600; only the broker's passwd and acl (hashes) are readable by the broker's user."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def orchard(data_dir: Path, *argv: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHARD_")}
    env |= {"ORCHARD_DATA_DIR": str(data_dir), "ORCHARD_STORE_URL": f"sqlite:///{data_dir}/ts.sqlite"}
    done = subprocess.run([sys.executable, "-m", "app", *argv], env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: os.umask(0o022))  # a usual login's umask
    assert done.returncode == 0, done.stdout + done.stderr


def test_records_db_data_dir_and_backup_are_private(tmp_path: Path) -> None:
    data = tmp_path / "village"
    orchard(data, "admin", "user", "add", "wang", "--display", "王建国", "--role", "farmer", "--phone", "13800000001")
    orchard(data, "admin", "backup", str(tmp_path / "out" / "b.tar.gz"))
    orchard(data, "admin", "mqtt-auth")
    assert mode(data) == 0o700
    assert mode(data / "records.sqlite") == 0o600
    assert [mode(p) for p in data.glob("records.sqlite-*")] == [0o600] * len(list(data.glob("records.sqlite-*")))
    assert mode(tmp_path / "out" / "b.tar.gz") == 0o600
    auth = data / "mqtt-auth"
    assert (mode(auth), mode(auth / "passwd"), mode(auth / "acl")) == (0o755, 0o644, 0o644)
    # Everything else they wrote there (the time series, locks, ...) is theirs alone too.
    others = {p.relative_to(data): mode(p) for p in data.rglob("*") if auth not in (p, *p.parents)}
    assert others and others == {p: 0o700 if (data / p).is_dir() else 0o600 for p in others}


def test_an_older_world_readable_records_db_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "records.sqlite").touch()
    (data / "records.sqlite").chmod(0o644)
    orchard(data, "admin", "user", "list")
    assert (mode(data), mode(data / "records.sqlite")) == (0o700, 0o600)


def test_a_second_records_engine_never_opens_the_db_file_itself(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing any descriptor of an open SQLite file drops all of this process's locks on it (POSIX), under the
    feet of the first engine's connections: the dashboard's pages and its cookie routes each open the records DB,
    and writes of the pages were lost. A second engine leaves the existing file to SQLite."""
    from orchard.records import Records

    first = Records.in_data_dir(tmp_path)
    opened: list[str] = []
    real_open = os.open

    def spy(path: object, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    second = Records.in_data_dir(tmp_path)
    second.close()
    first.close()
    assert str(tmp_path / "records.sqlite") not in opened
