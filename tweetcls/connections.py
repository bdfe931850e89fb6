"""Connection hygiene for serve.py: no connection is held open by a client that sends nothing, or too slowly.

uvicorn closes a keep-alive connection only when it is idle *after* an answer, and its timer stops at the
first byte: a client that connects and sends nothing, half a request head, or a body a byte at a time holds
its connection (and a file descriptor) forever; 20,000 of them starve the server (issue 46). Here every
request, head and body, must arrive within ``REQUEST_TIMEOUT`` seconds of the connection's start or of its
previous answer, else the connection is closed; past ``MAX_CONNECTIONS`` open connections a new one gets a
503 and is closed at once, so the server never runs out of file descriptors. Under overload every log record
is one line, and a repeated one is written once per ``LOG_EVERY`` seconds with the count of the rest.

serve.py sets the limits through the environment (``TWEETCLS_REQUEST_TIMEOUT``, ``TWEETCLS_MAX_CONNECTIONS``),
which its worker processes inherit, and names this protocol to uvicorn by its import string.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT_ENV, MAX_CONNECTIONS_ENV = "TWEETCLS_REQUEST_TIMEOUT", "TWEETCLS_MAX_CONNECTIONS"
PROTOCOL = "tweetcls.connections:GuardedH11Protocol"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 40\r\nconnection: close\r\n\r\n" \
       b"too many connections: try again shortly\n"
LOG_EVERY = 10.0  # seconds


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each whole request and a cap on open connections."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = float(os.environ.get(REQUEST_TIMEOUT_ENV, 15))
        self.max_connections = int(os.environ.get(MAX_CONNECTIONS_ENV, 256))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            logging.getLogger("uvicorn.error").warning(
                "over %d open connections: new ones get 503 (serve.py --max-connections)", self.max_connections)
            transport.write(BUSY)
            transport.close()
            return
        self._await_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._cancel_deadline()  # the whole request is in (or the connection is done): the app has it

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_request(self) -> None:
        self._cancel_deadline()
        if self.conn.their_state is h11.IDLE or self.conn.their_state is h11.SEND_BODY:  # not a pipelined one, in
            self.deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _cancel_deadline(self) -> None:
        if getattr(self, "deadline", None) is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        """No whole request in time: closed. A request begun gets a 408 first, if no answer has started."""
        self.deadline = None
        if self.transport.is_closing():
            return
        begun = self.conn.their_state is h11.SEND_BODY or (self.conn.their_state is h11.IDLE and self.conn.trailing_data[0])
        if begun and (self.cycle is None or self.cycle.response_complete or not self.cycle.response_started):
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        self.transport.close()


class OneLine(logging.Filter):
    """Every record one line (a traceback becomes its last line), and a repeat of the same message at most once
    per ``LOG_EVERY`` seconds, followed by how many were left out: a flood of clients cannot flood the log."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        super().__init__()
        self.every, self.last, self.left_out = every, {}, {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()}: {type(error).__name__}: {error}", None
            record.exc_info = record.exc_text = None
        text = record.getMessage()
        if "\n" in text:
            record.msg, record.args = " | ".join(line for line in text.splitlines() if line.strip()), None
        key = (record.name, record.msg if record.args else text)
        now = time.monotonic()
        if now - self.last.get(key, -self.every) < self.every:
            self.left_out[key] = self.left_out.get(key, 0) + 1
            return False
        self.last[key] = now
        count = self.left_out.pop(key, 0)
        if count:
            record.msg, record.args = f"{record.getMessage()} (and {count} more like it in the last " \
                                      f"{self.every:.0f} s)", None
        return True


def log_config() -> dict:
    """uvicorn's logging configuration with every record through ``OneLine``, asyncio's (accept errors) too."""
    from uvicorn.config import LOGGING_CONFIG

    config = {**LOGGING_CONFIG, "filters": {"one_line": {"()": "tweetcls.connections.OneLine"}}}
    config["handlers"] = {name: {**handler, "filters": ["one_line"]} for name, handler in LOGGING_CONFIG["handlers"].items()}
    config["loggers"] = {**LOGGING_CONFIG["loggers"],
                         "asyncio": {"handlers": ["default"], "level": "WARNING", "propagate": False}}
    return config
