"""`python -m hit_server.fleet.paper`: the registry's enabled accounts, for `./run.sh fleet` (tools/fleet.py).

    python -m hit_server.fleet.paper [--sim-accounts FILE]

Prints one JSON line, names only, never a key: `{"groups": {"eu-1": ["alice", "bob"]}, "unreadable":
{"carol": "why"}}`, the enabled accounts by egress group (one worker each) and those whose keys don't
open. With `--sim-accounts FILE` (paper mode: the launcher starts the BloFin simulator for the fleet),
it also writes FILE, the simulator's `--accounts` file: every enabled account's decrypted keys and
PAPER_BALANCE as its balance. FILE is created here with mode 0600 and must not exist (a file someone
else made could be read by them); the launcher puts it in a private temporary directory and deletes it.

The settings are the server's (DATABASE_URL, DATA_DIR, HIT_MASTER_KEY...). A database that can't be used
or a master key missing: one line on stderr, exit code 1 or 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hit_server.accounts.crypto import MasterKeyError
from hit_server.accounts.store import AccountStore, EnabledAccounts
from hit_server.journal.db import Database
from hit_server.settings import Settings, settings_problems

USAGE_ERROR = 2
DATABASE_ERROR = 1


async def enabled_accounts(settings: Settings) -> EnabledAccounts:
    """The registry's enabled accounts with their keys (the tables are made first on a new database)."""
    if settings.database_url is None:  # the journal's SQLite file, made where the server makes it
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.journal_url)
    try:
        await db.create_schema()
        return await AccountStore(db, settings).enabled_accounts()
    finally:
        await db.dispose()


def groups(enabled: EnabledAccounts) -> dict[str, list[str]]:
    """Account names by egress group, both sorted."""
    found: dict[str, list[str]] = {}
    for account in enabled.ready:
        found.setdefault(account.egress_group, []).append(account.name)
    return {group: sorted(names) for group, names in sorted(found.items())}


def sim_accounts(enabled: EnabledAccounts, balance: Decimal) -> dict[str, Any]:
    """The body of the simulator's `--accounts` file (and of `POST /sim/accounts`): the keys in clear."""
    return {
        "accounts": [
            {
                "api_key": account.credentials.api_key,
                "api_secret": account.credentials.api_secret.get_secret_value(),
                "passphrase": account.credentials.passphrase.get_secret_value(),
                "balance": str(balance),
            }
            for account in enabled.ready
        ]
    }


def write_private(path: Path, content: str) -> None:
    """`content` in a new file only its owner may read (0600); an existing file is an error."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        sink.write(content)


def main(argv: Sequence[str] | None = None) -> int:
    first_line = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m hit_server.fleet.paper", description=first_line)
    parser.add_argument("--sim-accounts", type=Path, help="write the simulator's accounts file here (0600)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"The fleet's accounts cannot be read: {settings_problems(exc)}\n")
        return USAGE_ERROR
    try:
        enabled = asyncio.run(enabled_accounts(settings))
    except MasterKeyError as exc:
        sys.stderr.write(f"The fleet's accounts cannot be read: {exc}\n")
        return USAGE_ERROR
    except Exception as exc:  # the database: one line, never a traceback
        sys.stderr.write(
            f"The fleet's accounts cannot be read: the database {Database(settings.journal_url).describe()} "
            f"can't be used ({type(exc).__name__})\n"
        )
        return DATABASE_ERROR
    if args.sim_accounts is not None:
        try:
            write_private(args.sim_accounts, json.dumps(sim_accounts(enabled, settings.paper_balance)))
        except OSError as exc:  # it exists already, or its directory is not there
            sys.stderr.write(f"The simulator's accounts file {args.sim_accounts} cannot be made: {exc}\n")
            return USAGE_ERROR
    sys.stdout.write(json.dumps({"groups": groups(enabled), "unreadable": enabled.unreadable}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
