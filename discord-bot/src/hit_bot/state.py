"""What the bot must remember across restarts, in one small JSON file under STATE_DIR.

- the last message id seen per watched channel, so missed messages are read back after a reconnect;
- the signal ids already sent to the server ("pending" until an answer came, then "done"), so an edit
  never re-trades and a restart re-asks the server (idempotently) only about unanswered ones;
- the id of the last server event posted to the notify channel.

Every change is written at once and atomically (temp file, fsync, rename): a crash leaves the old file
or the new one, never half of one. A corrupt file is set aside (`.corrupt`) and the bot starts afresh:
the server's idempotency keeps that safe.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

STATE_FILE = "bot-state.json"
MAX_REMEMBERED_SIGNALS = 5000
SendState = Literal["pending", "done"]


class StateStore:
    """The bot's memory. Single-threaded use from the event loop; each mutation is persisted."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE
        self._last_seen: dict[str, int] = {}
        self._sent: dict[str, SendState] = {}
        self._event_cursor: int | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._last_seen = {str(k): int(v) for k, v in raw.get("last_seen", {}).items()}
            sent = raw.get("sent", {}).items()
            self._sent = {str(k): ("done" if v == "done" else "pending") for k, v in sent}
            cursor = raw.get("event_cursor")
            self._event_cursor = int(cursor) if cursor is not None else None
        except FileNotFoundError:
            return
        except (ValueError, TypeError, AttributeError) as exc:
            aside = self.path.with_suffix(".corrupt")
            os.replace(self.path, aside)
            log.error("state file %s was unreadable (%s); moved to %s, starting afresh",
                      self.path, exc, aside)

    def _save(self) -> None:
        data = {"last_seen": self._last_seen, "sent": self._sent, "event_cursor": self._event_cursor}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ---- last message seen per channel ------------------------------------------------------------

    def last_seen(self, channel_id: int) -> int | None:
        return self._last_seen.get(str(channel_id))

    def saw(self, channel_id: int, message_id: int) -> None:
        """Remember a message id; ids only move forward."""
        key = str(channel_id)
        if message_id > self._last_seen.get(key, 0):
            self._last_seen[key] = message_id
            self._save()

    # ---- signals sent to the server ---------------------------------------------------------------

    def send_state(self, signal_id: str) -> SendState | None:
        return self._sent.get(signal_id)

    def pending(self) -> list[str]:
        """Signals sent without an answer (unreachable server, or a crash mid-send), oldest first."""
        return [signal_id for signal_id, state in self._sent.items() if state == "pending"]

    def mark_sending(self, signal_id: str) -> None:
        """Record the intent before the request goes out, so a crash mid-send is known afterwards."""
        self._set(signal_id, "pending")

    def mark_answered(self, signal_id: str) -> None:
        self._set(signal_id, "done")

    def _set(self, signal_id: str, value: SendState) -> None:
        self._sent.pop(signal_id, None)
        self._sent[signal_id] = value
        while len(self._sent) > MAX_REMEMBERED_SIGNALS:
            del self._sent[next(iter(self._sent))]
        self._save()

    # ---- server events ----------------------------------------------------------------------------

    @property
    def event_cursor(self) -> int | None:
        return self._event_cursor

    def set_event_cursor(self, event_id: int) -> None:
        if self._event_cursor is None or event_id > self._event_cursor:
            self._event_cursor = event_id
            self._save()
