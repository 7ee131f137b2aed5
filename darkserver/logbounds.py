"""Log records of client errors kept to one bounded line (settings.LOGGING's console handler).

A client controls what a 4xx echoes — a 60,000-character build-id, a URL of 64 KiB — and must
not be able to write tracebacks or megabytes into the server's log: a record below ERROR loses
its traceback (Django's security loggers attach one to every BadRequest) and its text is cut
to MAX_CHARS. Errors (5xx, failures of the service itself) keep their traceback.
"""

from __future__ import annotations

import logging

MAX_CHARS = 500


class BoundedClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        message = record.getMessage()
        if len(message) > MAX_CHARS or "\n" in message:
            cut = message[:MAX_CHARS].replace("\n", "\\n")
            record.msg = f"{cut}... ({len(message)} chars)" if len(message) > MAX_CHARS else cut
            record.args = None
        return True


class DropUvicornParserNotice(logging.Filter):
    """uvicorn logs "Invalid HTTP request received." before the edge logs the same rejection
    with its reason (httpedge.py): one line per client error is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."
