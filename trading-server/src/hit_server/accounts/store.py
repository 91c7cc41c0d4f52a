"""The accounts registry (issue #19, first slice): the `accounts` table of the journal's database and
`AccountStore`, the one place that reads and writes it.

An account is a member's own BloFin account: its keys (sealed with the master key, `crypto.py`), its
risk settings (empty: the server's), the symbols it trades, whether it is enabled, and its egress group
(which workers may use its keys, since BloFin binds keys to IP addresses).

The single-account setup of today is the account `default`: it is never stored; it is shown built from
the settings (its keys stay in BLOFIN_* of the environment or .env), cannot be changed here, and the
trading path uses the settings exactly as before. Nothing in the trading path reads this table yet: the
fan-out that will (one job per enabled account) takes its accounts from `enabled_accounts`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr
from sqlalchemy import JSON, Boolean, Connection, DateTime, Integer, String, Text, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hit_server.accounts.crypto import KeyMismatch, MasterKey, MasterKeyError, load_master_key
from hit_server.accounts.models import (
    DEFAULT_ACCOUNT,
    AccountChange,
    AccountCreate,
    AccountKeys,
    AccountOut,
    key_hint,
)
from hit_server.exchange.blofin_auth import Credentials
from hit_server.journal.db import Base, Database, as_utc, utcnow
from hit_server.settings import Settings
from hit_shared.models import TradingMode

log = logging.getLogger(__name__)

SECRET_FIELDS = ("api_key", "api_secret", "passphrase")


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = {"info": {"fleet_wide": True}}  # noqa: RUF012 - SQLAlchemy's declarative form

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # sealed with the master key (crypto.py): "v1:" + base64(nonce + ciphertext + tag)
    api_key: Mapped[str] = mapped_column(Text)
    api_secret: Mapped[str] = mapped_column(Text)
    passphrase: Mapped[str] = mapped_column(Text)
    key_hint: Mapped[str] = mapped_column(String(8))
    # MasterKey.fingerprint of the API key: one BloFin account registered twice would double every order
    key_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    # decimal text; NULL: the server's setting
    risk_per_trade_percent: Mapped[str | None] = mapped_column(String(40), default=None)
    max_position_size_usd: Mapped[str | None] = mapped_column(String(40), default=None)
    max_leverage: Mapped[int | None] = mapped_column(Integer, default=None)
    allowed_symbols: Mapped[list[str]] = mapped_column(JSON, default=list)
    blocked_symbols: Mapped[list[str]] = mapped_column(JSON, default=list)
    egress_group: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


ACCOUNTS = Base.metadata.tables["accounts"]


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why (and never holds a secret)."""


class AccountNotFound(AccountError):
    pass


class AccountConflict(AccountError):
    """The name is taken, or the account is `default` (its settings live in the server's settings)."""


@dataclass(frozen=True)
class AccountCredentials:
    """What a worker needs to trade for one account: its keys (decrypted) and its effective limits
    (the account's own setting, else the server's)."""

    name: str
    credentials: Credentials = field(repr=False)
    risk_per_trade_percent: Decimal
    max_position_size_usd: Decimal
    max_leverage: int
    allowed_symbols: tuple[str, ...]
    blocked_symbols: tuple[str, ...]
    egress_group: str

    def may_trade(self, symbol: str) -> bool:
        """Blocked symbols never; with an allow list, only its symbols."""
        if symbol in self.blocked_symbols:
            return False
        return not self.allowed_symbols or symbol in self.allowed_symbols


@dataclass(frozen=True)
class EnabledAccounts:
    """`ready`: the enabled accounts whose keys opened; `unreadable`: account name -> why not (a wrong
    master key): those are not traded, and one account's fault does not stop the others."""

    ready: list[AccountCredentials]
    unreadable: dict[str, str]


class AccountStore:
    """Reads and writes the `accounts` table. Each method is one transaction."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    # -- reading ------------------------------------------------------------------------------------

    async def list(self) -> list[AccountOut]:
        """Every account, `default` first, then by name; no secrets."""
        rows = await self.db.transaction(
            lambda conn: conn.execute(select(ACCOUNTS).order_by(ACCOUNTS.c.name)).mappings().all()
        )
        return [self.default_account(), *(_out(row) for row in rows)]

    async def get(self, name: str) -> AccountOut:
        if name == DEFAULT_ACCOUNT:
            return self.default_account()
        return _out(await self._row(name))

    def default_account(self) -> AccountOut:
        """The account of the settings, as it trades today."""
        settings = self.settings
        key = settings.blofin_api_key.get_secret_value()
        paper = settings.trading_mode is TradingMode.PAPER
        return AccountOut(
            name=DEFAULT_ACCOUNT,
            enabled=True,
            keys="from settings" if key or not paper else "none",
            key_hint=key_hint(key) if key else None,
            risk_per_trade_percent=settings.risk_per_trade_percent,
            max_position_size_usd=settings.max_position_size_usd,
            max_leverage=settings.max_leverage,
            allowed_symbols=(),
            blocked_symbols=(),
            egress_group="default",
            created_at=None,
            updated_at=None,
        )

    async def enabled_accounts(self, egress_group: str | None = None) -> EnabledAccounts:
        """The stored enabled accounts (of one egress group, if given) with their keys decrypted, for a
        worker of the fan-out. `default` is not among them: it trades through today's path."""

        def read(conn: Connection) -> list[Any]:
            query = select(ACCOUNTS).where(ACCOUNTS.c.enabled.is_(True)).order_by(ACCOUNTS.c.name)
            if egress_group is not None:
                query = query.where(ACCOUNTS.c.egress_group == egress_group)
            return list(conn.execute(query).mappings().all())

        rows = await self.db.transaction(read)
        if not rows:
            return EnabledAccounts([], {})
        master = load_master_key(self.settings, create=False)
        ready, unreadable = [], {}
        for row in rows:
            try:
                ready.append(self._credentials(master, row))
            except KeyMismatch as exc:
                log.error("%s", exc)
                unreadable[row["name"]] = str(exc)
        return EnabledAccounts(ready, unreadable)

    async def credentials(self, name: str) -> AccountCredentials:
        """One stored account's keys (decrypted) and effective limits, for the worker that trades it.
        `AccountNotFound` if there is none; `AccountError` if it is disabled or its keys can't be opened."""
        row = await self._row(name)
        if not row["enabled"]:
            raise AccountError(f"The account '{name}' is disabled.")
        try:
            return self._credentials(load_master_key(self.settings, create=False), row)
        except (KeyMismatch, MasterKeyError) as exc:
            raise AccountError(str(exc)) from exc

    def _credentials(self, master: MasterKey, row: Any) -> AccountCredentials:
        name, settings = row["name"], self.settings
        api_key, secret, passphrase = (master.open(name, f, row[f]) for f in SECRET_FIELDS)
        risk, cap = row["risk_per_trade_percent"], row["max_position_size_usd"]
        return AccountCredentials(
            name=name,
            credentials=Credentials(api_key, SecretStr(secret), SecretStr(passphrase)),
            risk_per_trade_percent=Decimal(risk) if risk is not None else settings.risk_per_trade_percent,
            max_position_size_usd=Decimal(cap) if cap is not None else settings.max_position_size_usd,
            max_leverage=row["max_leverage"] if row["max_leverage"] is not None else settings.max_leverage,
            allowed_symbols=tuple(row["allowed_symbols"] or ()),
            blocked_symbols=tuple(row["blocked_symbols"] or ()),
            egress_group=row["egress_group"],
        )

    # -- writing ------------------------------------------------------------------------------------

    async def check_new_name(self, name: str) -> None:
        """`AccountConflict` if `name` cannot be added (`default`, or taken), told before keys are read."""
        _not_default(name, "added")
        row = await self.db.transaction(
            lambda conn: conn.execute(select(ACCOUNTS.c.name).where(ACCOUNTS.c.name == name)).first()
        )
        if row is not None:
            raise AccountConflict(f"An account named '{name}' exists already.")

    async def add(self, new: AccountCreate) -> AccountOut:
        """Store a new account, its keys sealed; `AccountConflict` if the name is taken or the API key is
        another account's already (the same BloFin account traded twice would double every order)."""
        _not_default(new.name, "added")
        await self.check_new_name(new.name)
        master = load_master_key(self.settings, create=True)
        await self._check_key_unused(master, new.keys(), None)
        now = utcnow()
        values: dict[str, Any] = {
            **_sealed(master, new.name, new.keys()),
            "name": new.name,
            "enabled": new.enabled,
            "egress_group": new.egress_group,
            "created_at": now,
            "updated_at": now,
            **_settings_values(new, set(AccountChange.model_fields)),
        }
        try:
            await self.db.transaction(lambda conn: conn.execute(insert(ACCOUNTS).values(**values)))
        except IntegrityError as exc:  # added meanwhile by another process: the name, or the key
            await self.check_new_name(new.name)
            await self._check_key_unused(master, new.keys(), None)
            raise AccountConflict(f"The account '{new.name}' could not be added; try again.") from exc
        log.info("Account %s added (egress group %s)", new.name, new.egress_group)
        return await self.get(new.name)

    async def change(self, name: str, change: AccountChange) -> AccountOut:
        """Change the given settings of an account (only the fields set in `change`)."""
        _not_default(name, "changed")
        values = _settings_values(change, change.model_fields_set)
        await self._update(name, values)
        if values:
            log.info("Account %s changed: %s", name, ", ".join(sorted(values)))
        return await self.get(name)

    async def set_enabled(self, name: str, enabled: bool) -> AccountOut:
        return await self.change(name, AccountChange(enabled=enabled))

    async def rotate_keys(self, name: str, keys: AccountKeys) -> AccountOut:
        """Replace an account's keys (sealed afresh, new nonces)."""
        _not_default(name, "given new keys")
        await self._row(name)  # AccountNotFound first
        master = load_master_key(self.settings, create=True)
        await self._check_key_unused(master, keys, name)
        await self._update(name, _sealed(master, name, keys))
        log.info("Account %s: keys replaced", name)
        return await self.get(name)

    async def _check_key_unused(self, master: MasterKey, keys: AccountKeys, owner: str | None) -> None:
        """`AccountConflict` if `keys`' API key is the server's own or another account's than `owner`."""
        api_key = keys.api_key.get_secret_value()
        if api_key == self.settings.blofin_api_key.get_secret_value():
            raise AccountConflict(
                "These are the server's own BloFin keys (BLOFIN_API_KEY, the account 'default'): one "
                "BloFin account traded twice would double every order."
            )
        fingerprint = master.fingerprint(api_key)
        holder = await self.db.transaction(lambda conn: conn.scalar(
            select(ACCOUNTS.c.name).where(ACCOUNTS.c.key_fingerprint == fingerprint)
        ))
        if holder is not None and holder != owner:
            raise AccountConflict(
                f"This API key belongs to the account '{holder}' already: one BloFin account traded twice "
                "would double every order."
            )

    async def _update(self, name: str, values: dict[str, Any]) -> None:
        def work(conn: Connection) -> int:
            statement = update(ACCOUNTS).where(ACCOUNTS.c.name == name)
            return conn.execute(statement.values(**values, updated_at=utcnow())).rowcount

        if await self.db.transaction(work) == 0:
            raise AccountNotFound(f"No account named '{name}'.")

    async def _row(self, name: str) -> Any:
        row = await self.db.transaction(
            lambda conn: conn.execute(select(ACCOUNTS).where(ACCOUNTS.c.name == name)).mappings().first()
        )
        if row is None:
            raise AccountNotFound(f"No account named '{name}'.")
        return row


def _not_default(name: str, what: str) -> None:
    if name == DEFAULT_ACCOUNT:
        raise AccountConflict(
            f"The account '{DEFAULT_ACCOUNT}' is the server's own settings (BLOFIN_*, "
            f"RISK_PER_TRADE_PERCENT, ...): it cannot be {what} here; change the settings instead."
        )


def _sealed(master: MasterKey, name: str, keys: AccountKeys) -> dict[str, str]:
    plain = {f: getattr(keys, f).get_secret_value() for f in SECRET_FIELDS}
    return {
        **{f: master.seal(name, f, plain[f]) for f in SECRET_FIELDS},
        "key_hint": key_hint(plain["api_key"]),
        "key_fingerprint": master.fingerprint(plain["api_key"]),
    }


def _settings_values(model: AccountChange | AccountCreate, fields: set[str]) -> dict[str, Any]:
    """The row's values of the settings named in `fields` (decimals as text, symbol lists as lists)."""
    values: dict[str, Any] = {}
    for name in fields & set(AccountChange.model_fields):
        value = getattr(model, name)
        if name in ("allowed_symbols", "blocked_symbols"):
            value = list(value or ())
        elif isinstance(value, Decimal):
            value = str(value)
        if value is None and name in ("enabled", "egress_group"):
            continue  # not nullable: null changes nothing
        values[name] = value
    return values


def _out(row: Any) -> AccountOut:
    risk, cap = row["risk_per_trade_percent"], row["max_position_size_usd"]
    return AccountOut(
        name=row["name"],
        enabled=row["enabled"],
        keys="stored",
        key_hint=row["key_hint"],
        risk_per_trade_percent=Decimal(risk) if risk is not None else None,
        max_position_size_usd=Decimal(cap) if cap is not None else None,
        max_leverage=row["max_leverage"],
        allowed_symbols=tuple(row["allowed_symbols"] or ()),
        blocked_symbols=tuple(row["blocked_symbols"] or ()),
        egress_group=row["egress_group"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


__all__ = [
    "AccountConflict",
    "AccountCredentials",
    "AccountError",
    "AccountNotFound",
    "AccountStore",
    "EnabledAccounts",
    "KeyMismatch",
    "MasterKeyError",
]
