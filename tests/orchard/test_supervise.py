"""Loops that survive any exception, with a growing pause; heartbeats that `orchard check --service` reads."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from orchard.supervise import Backoff, Heartbeat, Steps, loop, read_beat


class CountingStop:
    """A stop event that records each pause and ends the loop after `rounds` of them."""

    def __init__(self, rounds: int) -> None:
        self.rounds, self.waits = rounds, []

    def is_set(self) -> bool:
        return len(self.waits) >= self.rounds

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.is_set()


def test_a_loop_lives_through_exceptions_with_a_growing_pause(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = iter([ValueError("bug"), OSError("disk"), OSError("disk"), None, KeyError("x"), None])

    def step() -> float:
        e = next(outcomes)
        if e is not None:
            raise e
        return 5.0

    stop = CountingStop(6)
    loop("test", step, stop, logging.getLogger("t"), Backoff(base_s=1, cap_s=3))  # type: ignore[arg-type]
    assert stop.waits == [1, 2, 3, 5.0, 1, 5.0]  # doubling up to the cap; a success resets it
    failed = [r for r in caplog.records if r.getMessage() == "loop_failed"]
    assert [r.kv["error"] for r in failed] == ["ValueError", "OSError", "OSError", "KeyError"]  # type: ignore[attr-defined]


def test_steps_count_failures_and_log_the_first_of_a_run_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    steps = Steps(logging.getLogger("t"))

    def broken() -> None:
        raise ConnectionError("records DB away")

    assert not steps.run("digest", broken, site="s")
    assert not steps.run("digest", broken, site="s")
    assert steps.run("digest", lambda: None)
    assert not steps.run("digest", broken)
    assert steps.failures == {"digest": 3} and steps.total() == 3
    failed = [r for r in caplog.records if r.getMessage() == "step_failed"]
    assert [bool(r.exc_info) for r in failed] == [True, False, True]
    assert failed[0].kv == {"step": "digest", "error": "ConnectionError", "detail": "records DB away",  # type: ignore[attr-defined]
                            "failures": 1, "in_a_row": 1, "site": "s"}
    assert [r.kv["after_failures"] for r in caplog.records if r.getMessage() == "step_recovered"] == [2]  # type: ignore[attr-defined]


def check(data_dir: Path, service: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--no-mqtt", "--no-store", "--no-db", "--service", service],
                                env={"ORCHARD_DATA_DIR": str(data_dir)})
    return result.exit_code, result.output


def test_check_fails_when_the_heartbeat_is_missing_or_older_than_its_limit(tmp_path: Path) -> None:
    code, out = check(tmp_path, "analytics")
    assert code == 1 and "has not reported a successful cycle yet" in out
    now = time.time()
    Heartbeat(tmp_path, "analytics", 300, clock=lambda: now - 200).beat(cycles=7)
    assert check(tmp_path, "analytics") == (0, "ok\n")
    beat = read_beat(tmp_path, "analytics")
    assert beat is not None and beat.detail == {"cycles": 7} and beat.limit_s == 300
    Heartbeat(tmp_path, "analytics", 300, clock=lambda: now - 301).beat()
    code, out = check(tmp_path, "analytics")
    # The check reads the wall clock: a second or two may pass on a loaded machine before it does.
    ago = re.search(r"last succeeded (\d+) s ago, limit 300 s", out)
    assert code == 1 and ago is not None and 301 <= int(ago.group(1)) <= 331, out
    assert check(tmp_path, "ingest")[0] == 1  # each service's own heartbeat


@pytest.mark.parametrize(("connected", "code"), [(True, 0), (False, 1), (None, 0)])
def test_check_reads_whether_the_service_is_connected_to_the_broker_without_connecting_itself(
        tmp_path: Path, connected: bool | None, code: int) -> None:
    """The broker names a connection after its account: `check --service` connecting as ingest would replace
    ingest's own connection. It reads the service's word instead (None: a service without MQTT)."""
    Heartbeat(tmp_path, "ingest", 120).beat(mqtt=connected)
    result = CliRunner().invoke(app, ["check", "--no-store", "--no-db", "--service", "ingest"],
                                env={"ORCHARD_DATA_DIR": str(tmp_path), "ORCHARD_MQTT_URL": "mqtt://127.0.0.1:9"})
    assert result.exit_code == code, result.output  # port 9: a connection attempt would fail whatever the beat
    assert ("is not connected to the broker" in result.output) == (code == 1)


def test_beats_are_at_most_one_per_gap_unless_forced(tmp_path: Path) -> None:
    now = [1000.0]
    beat = Heartbeat(tmp_path, "ingest", 120, clock=lambda: now[0], min_gap_s=1.0)
    beat.beat(n=1)
    now[0] += 0.5
    beat.beat(n=2)
    assert read_beat(tmp_path, "ingest").detail == {"n": 1}  # type: ignore[union-attr]
    beat.beat(force=True, n=3)
    assert read_beat(tmp_path, "ingest").detail == {"n": 3}  # type: ignore[union-attr]
