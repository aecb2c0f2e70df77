"""The ingest writer in a process of its own.

Validation and line-protocol serialization cost about as much CPU per message as paho's network loop does, and
in one process both share one GIL: the writer then halves the rate at which ingest can read a backlog. Here the
writer gets its own process (and core); the MQTT side only sends it whole batches over a pipe and acknowledges
them when the writer answers that they are durable.

If the writer process dies, the batch it was given is not acked; a new writer is started and given the batch
again (the store's idempotent writes absorb a repeat).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from orchard import logs
from orchard.logs import event
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import open_store
from sensors.spool import Spool
from sensors.writer import BatchWriter, Received

log = logging.getLogger("orchard.ingest")
_START_TIMEOUT_S = 60


def build_writer(settings: Settings) -> BatchWriter:
    """The writer and its store, records and spool, in this order (also used by the in-thread mode)."""
    store = open_store(settings.store_url)
    records = Records.open(settings)
    spool = Spool(settings.data_dir / "spool")
    return BatchWriter(settings, store, records, spool)


def _serve(conn: Connection, settings: Settings, log_level: int) -> None:
    """The child process: answer each request once it is done; 'close' ends it."""
    # Ctrl-C reaches the whole process group; the parent decides when this process closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs.setup(logging.getLevelName(log_level))
    writer = build_writer(settings)
    event(log, "writer_started", spooled_batches=len(writer.spool))
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the MQTT side is gone; what it sent is either answered or will be redelivered
            break
        op = request[0]
        if op == "handle":
            writer.handle(request[1])
        elif op == "tick":
            writer.tick(final=request[1])
        elif op == "close":
            writer.tick(final=True)
            conn.send(("ok",))
            break
        conn.send(("ok",))
    writer.close()


class WriterProcess:
    """Same calls as BatchWriter (handle, tick, close), carried out in a child process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # spawn, not fork: the parent runs threads (paho's loop), and forking those is unsafe.
        self._ctx = mp.get_context("spawn")
        self._conn: Connection | None = None
        self._proc: Any = None

    def start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, args=(child, self.settings, logging.getLogger().level),
                                       name="orchard-ingest-writer", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(_START_TIMEOUT_S):
            raise RuntimeError("the ingest writer process did not start within 60 s; see its log lines above")
        parent.recv()

    def handle(self, batch: list[Received]) -> None:
        self._call(("handle", batch))

    def tick(self, final: bool = False) -> None:
        self._call(("tick", final))

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._call(("close",))
            self._proc.join(30)
        if self._conn is not None:
            self._conn.close()

    def _call(self, request: tuple[Any, ...]) -> None:
        while True:
            try:
                assert self._conn is not None
                self._conn.send(request)
                self._conn.recv()
                return
            except (EOFError, OSError) as e:
                code = self._proc.exitcode if self._proc is not None else None
                event(log, "writer_process_died", logging.ERROR, exitcode=code, error=repr(e))
                time.sleep(1)
                if self._proc is not None:
                    self._proc.kill()
                    self._proc.join(10)
                self.start()
