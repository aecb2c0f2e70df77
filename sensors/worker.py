"""The ingest writer in a process of its own.

Validation and line-protocol serialization cost about as much CPU per message as paho's network loop does, and
in one process both share one GIL: the writer then halves the rate at which ingest can read a backlog. Here the
writer gets its own process (and core); the MQTT side only sends it whole batches over a pipe and acknowledges
them when the writer answers that they are durable.

If the writer process dies, the batch it was given is not acked; the MQTT side gives the batch again, and that
call starts a new writer (the store's idempotent writes absorb a repeat). A request the writer cannot carry out
is answered with its error and the writer runs on.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
from multiprocessing.connection import Connection
from typing import Any

from orchard import logs
from orchard.logs import event
from orchard.records import Records
from orchard.redact import hide
from orchard.settings import Settings, secret_values
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
    hide(*secret_values(settings))  # a process of its own: it must know the secrets to mask them
    writer = build_writer(settings)
    event(log, "writer_started", spooled_batches=len(writer.spool))
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the MQTT side is gone; what it sent is either answered or will be redelivered
            break
        op = request[0]
        try:
            if op == "handle":
                writer.handle(request[1])
            elif op == "tick":
                writer.tick(final=request[1])
            elif op == "close":
                writer.tick(final=True)
        except Exception as e:  # told to the MQTT side, which keeps the batch unacked and tries again
            log.exception("writer_request_failed")
            conn.send(("error", f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"))
            continue
        conn.send(("ok",))
        if op == "close":
            break
    writer.close()


class WriterGone(RuntimeError):
    """The writer process died or could not start; the next call starts it again."""


class WriterFailed(RuntimeError):
    """The writer process could not carry out the request (it said why); it runs on."""


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
        try:
            if not parent.poll(_START_TIMEOUT_S):
                raise WriterGone("the ingest writer process did not start within 60 s; see its log lines above")
            parent.recv()
        except (EOFError, OSError) as e:  # it died while starting (the records DB away, say): see its log
            self._stop_child()
            raise WriterGone(f"the ingest writer process exited while starting (exit code "
                             f"{self._proc.exitcode}); see its log lines above") from e

    def handle(self, batch: list[Received]) -> None:
        self._call(("handle", batch))

    def tick(self, final: bool = False) -> None:
        self._call(("tick", final))

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            try:
                self._call(("close",))
                self._proc.join(30)
            except (WriterGone, WriterFailed) as e:  # what it did not store is unacked: the broker keeps it
                event(log, "writer_close_failed", logging.WARNING, error=str(e))
        self._stop_child()

    def _call(self, request: tuple[Any, ...]) -> None:
        """One request, answered; a writer that is gone is started anew first. Raises WriterGone or
        WriterFailed: the caller keeps its batch and tries again (sensors.ingest retries with backoff)."""
        if self._proc is None or not self._proc.is_alive() or self._conn is None:
            if self._proc is not None:
                event(log, "writer_process_died", logging.ERROR, exitcode=self._proc.exitcode)
                self._stop_child()
            self.start()
        assert self._conn is not None
        try:
            self._conn.send(request)
            reply = self._conn.recv()
        except (EOFError, OSError) as e:
            code = self._proc.exitcode if self._proc is not None else None
            event(log, "writer_process_died", logging.ERROR, exitcode=code, error=repr(e))
            self._stop_child()
            raise WriterGone(f"the ingest writer process died (exit code {code}); it is started again") from e
        if reply[0] == "error":
            raise WriterFailed(reply[1])

    def _stop_child(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._conn = None
