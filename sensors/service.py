"""Builds and runs the ingest service, in this order: settings, store, records, spool, MQTT, ingest."""

from __future__ import annotations

import logging
import signal
import threading

from orchard.logs import event
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import StoreError, open_store
from sensors.ingest import Ingest
from sensors.spool import Spool

log = logging.getLogger("orchard.ingest")


def run_ingest(settings: Settings) -> None:
    store = open_store(settings.store_url)
    try:
        store.ensure_ready()  # InfluxDB 1.x: create the database when missing
    except StoreError as e:
        # Not fatal: ingest spools to disk until the store is back.
        event(log, "store_not_ready", logging.WARNING, error=str(e)[:300])
    records = Records.in_data_dir(settings.data_dir)
    spool = Spool(settings.data_dir / "spool")
    ingest = Ingest(settings, store, records, spool)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ingest.start()
    stop.wait()
    ingest.stop()
    store.close()
    records.close()
