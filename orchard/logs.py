"""Structured log lines: ``ts=... level=info logger=ingest event=batch_stored n=2000``.

Call ``log.info("batch_stored", extra={"kv": {"n": 2000}})`` or use ``event(log, "batch_stored", n=2000)``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        parts = [f"ts={ts}.{int(record.msecs):03d}", f"level={record.levelname.lower()}", f"logger={record.name}"]
        parts.append(f"event={_q(record.getMessage())}")
        for k, v in getattr(record, "kv", {}).items():
            parts.append(f"{k}={_q(v)}")
        if record.exc_info:
            parts.append(f"exc={_q(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _q(v: Any) -> str:
    s = str(v)
    if not s or any(c in s for c in ' "=\n'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return s


def event(log: logging.Logger, name: str, level: int = logging.INFO, **kv: Any) -> None:
    log.log(level, name, extra={"kv": kv})


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the service's own


def progress() -> Progress:
    """A progress bar on stderr, so a command's stdout stays its result (benchmarks print JSON there)."""
    return Progress(console=Console(stderr=True))
