"""Every table of the journal's database, in one import: a process that creates schemas (the server, a
fleet worker making an account's journal) imports this module, so that it creates all of them, not only
those of the modules it happened to import. A module that adds a table is listed here (and in
`db.ACCOUNT_JOURNAL_TABLES` if every account's journal has it)."""

from hit_server.accounts import store as accounts_store  # noqa: F401 - the accounts registry
from hit_server.fleet import tables as fleet_tables  # noqa: F401 - the fan-out's rows
from hit_server.journal import db, trade_actions, trade_book, trade_lease  # noqa: F401

TABLES = db.Base.metadata.tables
