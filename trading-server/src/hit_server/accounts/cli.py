"""`python -m hit_server accounts ...` (and `./run.sh accounts ...`): the accounts registry from a shell.

    accounts list
    accounts add NAME [--risk-percent P] [--max-usd USD] [--max-leverage N]
                      [--allow SYM,SYM] [--block SYM,SYM] [--egress GROUP] [--disabled]
    accounts set NAME [the same options; 'server' as a value: the server's setting again]
    accounts disable NAME | accounts enable NAME
    accounts rotate-key NAME

The keys (`add`, `rotate-key`) are never arguments (arguments show in `ps`): at a terminal they are asked
for without echo; otherwise they are read from standard input, three lines: API key, secret, passphrase.
The database and the master key are the server's settings (DATABASE_URL or DATA_DIR, HIT_MASTER_KEY...).
Bad input: one line on stderr and exit code 2; a database that cannot be used: one line and exit code 1.
No key is ever printed; `list` shows a 4-character hint.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError

from hit_server.accounts.crypto import KeyMismatch, MasterKeyError, key_file_path
from hit_server.accounts.models import AccountChange, AccountCreate, AccountKeys, AccountOut
from hit_server.accounts.store import AccountError, AccountStore
from hit_server.api.http_errors import JournalUnavailable
from hit_server.journal.db import Database
from hit_server.settings import Settings

USAGE_ERROR = 2
DATABASE_ERROR = 1
SERVER_VALUE = "server"  # `set --risk-percent server`: the server's setting again
KEYS = ("api_key", "api_secret", "passphrase")
PROMPTS = ("BloFin API key: ", "API secret: ", "Passphrase: ")
KEY_PROMPTS = tuple(zip(KEYS, PROMPTS, strict=True))


class BadInput(Exception):
    """Input the command cannot use; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hit_server accounts", description="The accounts registry (keys encrypted).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="every account, without keys")
    helps = (("add", "a new account; keys from stdin or a hidden prompt"), ("set", "change settings"))
    for name, text in helps:
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name")
        sub.add_argument("--risk-percent", help="risk per trade, %% of equity")
        sub.add_argument("--max-usd", help="the largest position, USD")
        sub.add_argument("--max-leverage")
        sub.add_argument("--allow", help="only these symbols, comma-separated ('' for all)")
        sub.add_argument("--block", help="never these symbols, comma-separated")
        sub.add_argument("--egress", help="the egress group whose workers may use the keys")
        if name == "add":
            sub.add_argument("--disabled", action="store_true", help="stored, but not traded until enabled")
    for name in ("enable", "disable", "rotate-key"):
        commands.add_parser(name, help=f"{name} an account").add_argument("name")
    return parser


def main(argv: Sequence[str], stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    stdin, out = stdin or sys.stdin, out or sys.stdout
    try:
        args = build_parser().parse_args(list(argv))
        settings = Settings()
        return asyncio.run(_run(args, settings, stdin, out))
    except BadInput as exc:
        sys.stderr.write(f"accounts: {exc}\n")
        return USAGE_ERROR
    except ValidationError as exc:
        sys.stderr.write(f"accounts: {_first_problem(exc)}\n")
        return USAGE_ERROR
    except (AccountError, MasterKeyError, KeyMismatch) as exc:
        sys.stderr.write(f"accounts: {exc}\n")
        return USAGE_ERROR
    except (JournalUnavailable, OSError) as exc:
        problem = type(exc).__name__
        sys.stderr.write(f"accounts: the journal's database cannot be used ({problem}): {_where()}\n")
        return DATABASE_ERROR


def _where() -> str:
    """The database's URL without its password, for the one line of a database failure."""
    try:
        return Database(Settings().journal_url).describe()
    except (ValidationError, ValueError):
        return "check DATABASE_URL / DATA_DIR"


async def _run(args: argparse.Namespace, settings: Settings, stdin: TextIO, out: TextIO) -> int:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.journal_url)
    try:
        await db.create_schema()
        store = AccountStore(db, settings)
        command = args.command
        if command == "list":
            out.write(render_table(await store.list()))
            return 0
        if command == "add":
            fields = {"name": args.name, **_options(args, clearable=False)}
            AccountCreate.model_validate({**fields, **dict.fromkeys(KEYS, "x")})  # bad options before keys
            await store.check_new_name(args.name)
            new = AccountCreate.model_validate({**fields, **_read_keys(stdin)})
            had_key_file = key_file_path(settings).exists()
            account = await store.add(new)
            out.write(f"Account {account.name} added; its keys are stored encrypted.\n")
            if not had_key_file and key_file_path(settings).exists():
                out.write(f"A new master key was generated in {key_file_path(settings)}: back it up.\n")
            return 0
        if command == "set":
            change = AccountChange(**_options(args, clearable=True))
            if not change.model_fields_set:
                raise BadInput("nothing to change: give at least one option (see --help)")
            account = await store.change(args.name, change)
            out.write(f"Account {account.name} changed.\n")
            return 0
        if command in ("enable", "disable"):
            account = await store.set_enabled(args.name, command == "enable")
            out.write(f"Account {account.name} {command}d.\n")
            return 0
        await store.get(args.name)  # rotate-key: a missing account is said before the keys are asked for
        account = await store.rotate_keys(args.name, AccountKeys.model_validate(_read_keys(stdin)))
        out.write(f"Account {account.name}: keys replaced.\n")
        return 0
    finally:
        await db.dispose()


def _options(args: argparse.Namespace, *, clearable: bool) -> dict[str, Any]:
    """The settings given as options, as the models' fields; 'server' clears a risk setting (set)."""
    given: dict[str, Any] = {}
    pairs = (
        ("risk_percent", "risk_per_trade_percent"),
        ("max_usd", "max_position_size_usd"),
        ("max_leverage", "max_leverage"),
    )
    for option, field_name in pairs:
        value = getattr(args, option)
        if value is None:
            continue
        given[field_name] = None if clearable and value.strip().lower() == SERVER_VALUE else value
    for option, field_name in (("allow", "allowed_symbols"), ("block", "blocked_symbols")):
        value = getattr(args, option)
        if value is not None:
            given[field_name] = tuple(s.strip().upper() for s in value.split(",") if s.strip())
    if args.egress is not None:
        given["egress_group"] = args.egress
    if getattr(args, "disabled", False):
        given["enabled"] = False
    return given


def _read_keys(stdin: TextIO) -> dict[str, str]:
    """API key, secret and passphrase: a hidden prompt at a terminal, else three lines of stdin."""
    keys: dict[str, str] = {}
    for field_name, prompt in KEY_PROMPTS:
        if stdin.isatty():
            value = getpass.getpass(prompt)
        else:
            line = stdin.readline()
            if not line:
                raise BadInput("expected three lines on standard input: API key, secret, passphrase")
            value = line.rstrip("\r\n")
        if not value.strip():
            raise BadInput(f"the {field_name.replace('_', ' ')} is empty")
        keys[field_name] = value.strip()
    return keys


def _first_problem(exc: ValidationError) -> str:
    """One line naming the field and what is wrong with it (never the value: it may be a key)."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def render_table(accounts: Sequence[AccountOut]) -> str:
    """The accounts as a text table; keys shown at most as their hint."""
    header = ("NAME", "ENABLED", "KEYS", "KEY", "RISK %", "MAX USD", "MAX LEV", "EGRESS", "SYMBOLS")
    rows = [header]
    for a in accounts:
        symbols = ",".join(a.allowed_symbols) or "all"
        if a.blocked_symbols:
            symbols += " -" + ",-".join(a.blocked_symbols)
        rows.append(
            (
                a.name,
                "yes" if a.enabled else "no",
                a.keys,
                a.key_hint or "-",
                _or_server(a.risk_per_trade_percent),
                _or_server(a.max_position_size_usd),
                _or_server(a.max_leverage),
                a.egress_group,
                symbols,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "".join(line + "\n" for line in lines)


def _or_server(value: object) -> str:
    return "server" if value is None else str(value)
