"""What an account is, as the API and the CLI speak it (pydantic models, frozen, unknown fields refused).

Secrets come in (`AccountCreate`, `AccountKeys`) as `SecretStr` and never go out: `AccountOut` has no
field that could hold one, only `key_hint` (the API key's first 4 characters and an ellipsis).

A risk setting left empty (null) means "the server's setting" (RISK_PER_TRADE_PERCENT,
MAX_POSITION_SIZE_USD, MAX_LEVERAGE), so an account only states where it differs.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

DEFAULT_ACCOUNT = "default"  # the single-account setup of the settings (journal/db.py's DEFAULT_ACCOUNT)
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
GROUP_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
SYMBOL_PATTERN = r"^[A-Z0-9]{1,15}-[A-Z0-9]{1,15}$"
MAX_SYMBOLS = 200
DEFAULT_GROUP = "default"

AccountName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EgressGroup = Annotated[str, StringConstraints(pattern=GROUP_PATTERN)]
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=256)]
RiskPercent = Annotated[Decimal, Field(gt=0, le=100, max_digits=12, decimal_places=6)]
UsdCap = Annotated[Decimal, Field(gt=0, le=Decimal(10) ** 12, max_digits=20, decimal_places=8)]
Leverage = Annotated[int, Field(ge=1, le=150)]
Symbols = Annotated[tuple[Symbol, ...], Field(max_length=MAX_SYMBOLS)]


def _printable_secret(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if text != text.strip() or not text.isprintable():
        raise ValueError("must be printable text without surrounding spaces")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountKeys(_Model):
    """An account's BloFin API key, secret and passphrase (PUT /accounts/{name}/keys)."""

    api_key: Secret
    api_secret: Secret
    passphrase: Secret

    _printable = field_validator("api_key", "api_secret", "passphrase")(_printable_secret)


class AccountChange(_Model):
    """The settings of an account that may change (PATCH): only the fields given are changed; null for a
    risk setting means "the server's setting" again."""

    enabled: bool | None = None
    risk_per_trade_percent: RiskPercent | None = None
    max_position_size_usd: UsdCap | None = None
    max_leverage: Leverage | None = None
    allowed_symbols: Symbols | None = Field(
        default=None, description="Only these symbols are traded; empty: every symbol not blocked"
    )
    blocked_symbols: Symbols | None = None
    egress_group: EgressGroup | None = Field(
        default=None, description="Which workers may use this account's keys (BloFin keys are bound to IPs)"
    )


class AccountCreate(_Model):
    """A new account with its keys (POST /accounts); the answer never holds the keys."""

    name: AccountName
    api_key: Secret
    api_secret: Secret
    passphrase: Secret
    enabled: bool = True
    risk_per_trade_percent: RiskPercent | None = None
    max_position_size_usd: UsdCap | None = None
    max_leverage: Leverage | None = None
    allowed_symbols: Symbols = ()
    blocked_symbols: Symbols = ()
    egress_group: EgressGroup = DEFAULT_GROUP

    _printable = field_validator("api_key", "api_secret", "passphrase")(_printable_secret)

    def keys(self) -> AccountKeys:
        return AccountKeys(api_key=self.api_key, api_secret=self.api_secret, passphrase=self.passphrase)


class AccountOut(_Model):
    """An account as shown: its settings, never its keys."""

    name: str
    enabled: bool
    keys: Literal["stored", "from settings", "none"] = Field(
        description="stored: encrypted in the journal; from settings: BLOFIN_* of the server's settings "
        "(the `default` account); none: paper mode's default account needs none"
    )
    key_hint: str | None = Field(description="The API key's first 4 characters and an ellipsis, at most")
    risk_per_trade_percent: Decimal | None
    max_position_size_usd: Decimal | None
    max_leverage: int | None
    allowed_symbols: tuple[str, ...]
    blocked_symbols: tuple[str, ...]
    egress_group: str
    created_at: datetime | None
    updated_at: datetime | None


class AccountsOut(_Model):
    accounts: list[AccountOut]


def key_hint(api_key: str) -> str:
    """At most the first 4 characters of an API key (fewer for a short key), then an ellipsis."""
    return api_key[: min(4, len(api_key) // 4)] + "…"
