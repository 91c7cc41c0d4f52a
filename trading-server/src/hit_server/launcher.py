"""Starts the services together (`./run.sh`) or the paper demo (`./run.sh demo`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "run"
    sys.stderr.write(f"'{command}' is not available yet: it arrives with the launcher issue.\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
