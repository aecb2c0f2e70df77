"""Builds and runs the ingest service, in this order: settings, store check, writer, MQTT side."""

from __future__ import annotations

import logging
import signal
import threading

from orchard.logs import event
from orchard.settings import Settings
from orchard.store import StoreError, open_store
from sensors.ingest import Ingest, Writer
from sensors.worker import WriterProcess, build_writer

log = logging.getLogger("orchard.ingest")


def run_ingest(settings: Settings) -> None:
    store = open_store(settings.store_url)
    try:
        store.ensure_ready()  # InfluxDB 1.x: create the database when missing
    except StoreError as e:
        # Not fatal: ingest spools to disk until the store is back.
        event(log, "store_not_ready", logging.WARNING, error=str(e)[:300])
    finally:
        store.close()
    writer: Writer
    if settings.ingest.writer_process:
        writer = WriterProcess(settings)
        writer.start()
    else:
        writer = build_writer(settings)
    ingest = Ingest(settings, writer)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ingest.start()
    stop.wait()
    ingest.stop()
    writer.close()
