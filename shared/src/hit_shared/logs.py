"""Logging for both services: one line per event, to the console and a rotating file, and every line
written while a signal is being handled carries its signal_id.

Call `configure_logging` once, in a service's `__main__`; wrap the handling of one signal in
`signal_context(signal_id)`. The id travels in a context variable, so it follows the signal through
awaits and into tasks started while handling it, and a line logged by any library on the way (httpx,
SQLAlchemy, discord.py) is tagged too. Lines outside a signal show `-`.
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(signal_id)s] %(message)s"
MAX_FILE_BYTES = 10 * 1024 * 1024
BACKUP_FILES = 5
# Libraries that log every request at INFO: one line per HTTP call drowns the events that matter.
CHATTY_LOGGERS = ("httpx", "httpcore", "websockets")

_signal_id: ContextVar[str | None] = ContextVar("hit_signal_id", default=None)


@contextmanager
def signal_context(signal_id: str) -> Iterator[None]:
    """Tag every log line written inside the block (and in tasks it starts) with `signal_id`."""
    token = _signal_id.set(signal_id)
    try:
        yield
    finally:
        _signal_id.reset(token)


def current_signal_id() -> str | None:
    return _signal_id.get()


class SignalIdFilter(logging.Filter):
    """Adds `record.signal_id` (the signal being handled, or "-") so the format can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.signal_id = _signal_id.get() or "-"
        return True


def configure_logging(
    service: str, level: str, log_dir: Path | None, *, chatty: tuple[str, ...] = ()
) -> Path | None:
    """Console plus, when `log_dir` is given, `<log_dir>/<service>.log` rotated at 10 MB (5 kept). The
    loggers of CHATTY_LOGGERS and of `chatty` (this service's own) show only warnings unless debugging.

    Returns the log file's path (None without a file), so the caller can say where to look.
    """
    tag = SignalIdFilter()
    formatter = logging.Formatter(LINE_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    log_file: Path | None = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{service}.log"
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_file, maxBytes=MAX_FILE_BYTES, backupCount=BACKUP_FILES, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.addFilter(tag)
        handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    chatty_level = logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING
    for name in (*CHATTY_LOGGERS, *chatty):
        logging.getLogger(name).setLevel(chatty_level)
    return log_file
