"""The journals of the fleet's accounts, as the API reads them: one PostgreSQL schema per account
(`traders.schema_name`), made on first use by whoever needs it first (a worker trading the account, or an
operator reading its trades before it traded)."""

from __future__ import annotations

from hit_server.accounts.models import DEFAULT_ACCOUNT
from hit_server.accounts.store import AccountNotFound, AccountStore
from hit_server.journal import tables as journal_tables  # noqa: F401 - every table an account's journal has
from hit_server.journal.db import Database
from hit_server.settings import Settings


def schema_name(account: str) -> str:
    """Where an account's journal lives (account names are lower-case letters, digits, `_` and `-`)."""
    return f"account_{account}"


class AccountJournals:
    """`journal_db(name)`: the database view holding an account's journal (the server's own journal for
    `default`); `AccountNotFound` for a name the registry does not hold, or any name but `default` on SQLite
    (fleet accounts need PostgreSQL)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.store = AccountStore(db, settings)
        self._made: set[str] = set()

    async def journal_db(self, name: str) -> Database:
        if name == DEFAULT_ACCOUNT:
            return self.db
        if self.db.url.get_backend_name() != "postgresql":
            raise AccountNotFound(f"No account named '{name}' trades here: fleet accounts need PostgreSQL.")
        await self.store.get(name)  # AccountNotFound
        view = self.db.in_schema(schema_name(name))
        if name not in self._made:
            await view.create_schema()
            self._made.add(name)
        return view
