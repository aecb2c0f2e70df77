"""Structured log lines: ``ts=... level=info logger=ingest event=batch_stored n=2000``.

Call ``log.info("batch_stored", extra={"kv": {"n": 2000}})`` or use ``event(log, "batch_stored", n=2000)``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress

from orchard.redact import redact


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        parts = [f"ts={ts}.{int(record.msecs):03d}", f"level={record.levelname.lower()}", f"logger={record.name}"]
        parts.append(f"event={_q(record.getMessage())}")
        for k, v in getattr(record, "kv", {}).items():
            parts.append(f"{k}={_q(v)}")
        if record.exc_info:
            parts.append(f"exc={_q(self.formatException(record.exc_info))}")
        return redact(" ".join(parts))  # whatever put a secret in the line (an exception's text), it is masked


def _q(v: Any) -> str:
    s = str(v)
    if not s or any(c in s for c in ' "=\n'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return s


def event(log: logging.Logger, name: str, level: int = logging.INFO, **kv: Any) -> None:
    log.log(level, name, extra={"kv": kv})


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """An uncaught exception is printed as Python would, with the process's secrets masked."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    sys.stderr.write(redact(f"Exception in thread {name}:\n"
                            + "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))))


def setup(level: str = "INFO") -> None:
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the service's own


def progress() -> Progress:
    """A progress bar on stderr, so a command's stdout stays its result (benchmarks print JSON there)."""
    return Progress(console=Console(stderr=True))
