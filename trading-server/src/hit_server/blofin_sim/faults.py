"""Injected failures: the next N requests (optionally under a path prefix) misbehave in a chosen way.

delay       answer `seconds` late (the request is carried out)
timeout     hold `seconds` without carrying it out, then HTTP 504
http_5xx    HTTP `code` (default 503), not carried out
http_429    HTTP 429 in BloFin's envelope, not carried out
error_code  HTTP 200 with BloFin code `code`, not carried out
drop_reply  carry it out, then drop the connection without a reply
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["delay", "timeout", "http_5xx", "http_429", "error_code", "drop_reply"]
FAULT_KINDS: tuple[str, ...] = ("delay", "timeout", "http_5xx", "http_429", "error_code", "drop_reply")


@dataclass
class Fault:
    kind: FaultKind
    count: int = 1
    code: str = ""
    seconds: float = 0.0
    path: str = ""


class FaultPlan:
    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def clear(self) -> None:
        self.pending.clear()

    def take(self, path: str) -> Fault | None:
        """The first fault that applies to `path`, counted down (removed when used up)."""
        for fault in self.pending:
            if path.startswith(fault.path):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None
