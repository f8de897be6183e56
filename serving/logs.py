"""Structured JSON logs with the request id of the request being served."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sonicforge_request_id", default=None
)

# Attributes every LogRecord has; anything else was passed in ``extra``
# (except uvicorn's ANSI-coloured copy of the message, dropped below).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id,
    any ``extra`` fields, and the traceback (server side only)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):  # the access log's fast path: one known dict
            out.update(fields)
        else:
            for key, value in record.__dict__.items():
                if key not in _STANDARD and not key.startswith("_") and key != "color_message":
                    out[key] = value
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(out, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO") -> None:
    """Send the API's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("serving", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # The API writes its own access log line with the request id and timing.
    logging.getLogger("uvicorn.access").disabled = True


def _log_stream(logger: logging.Logger) -> TextIO:
    """The stream of the first stream handler serving ``logger``."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if isinstance(handler, logging.StreamHandler):
                return handler.stream  # type: ignore[no-any-return]
        current = current.parent if current.propagate else None
    return sys.stderr


class AccessLog:
    """One JSON line per request, in the shape ``JsonFormatter`` writes,
    logger ``serving.access``, written in batches.

    The access log runs on every request, and going through ``logging``
    (a record, the caller's frame, a formatter, a flush per line) cost as
    much as the rest of a cached read. Lines are built directly here and
    written to the ``serving`` handler's stream when ``max_lines`` have
    gathered or ``max_delay_s`` after the first of them, and on shutdown.
    Runs on the server's event loop; outside one it writes at once.
    """

    def __init__(self, *, max_lines: int = 256, max_delay_s: float = 0.5) -> None:
        self.logger = logging.getLogger("serving.access")
        self.max_lines = max_lines
        self.max_delay_s = max_delay_s
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # the date part changes once a second
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((now - second) * 1000):03d}+00:00"

    def request(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        duration_ms: float,
        client: str | None,
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        # request_id is validated or generated, method an HTTP token: both
        # need no escaping; path and client go through json.dumps.
        self._lines.append(
            f'{{"ts":"{self._timestamp(time.time())}","level":"info","logger":"serving.access",'
            f'"message":"request","request_id":"{request_id}","method":"{method}",'
            f'"path":{json.dumps(path)},"status":{status},"duration_ms":{duration_ms},'
            f'"client":{json.dumps(client)}}}\n'
        )
        if len(self._lines) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.max_delay_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        stream = _log_stream(self.logger)
        try:
            stream.write("".join(lines))
            stream.flush()
        except (OSError, ValueError):  # a closed stream: nowhere left to log
            pass
