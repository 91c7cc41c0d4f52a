"""The trading server's settings: one pydantic-settings class, read from the environment and
`trading-server/.env` (every key is documented in `.env.example`).

Safety rules live in the validators, so an unsafe configuration never starts: demo and live need
BloFin credentials and at least one API key of 32+ characters. Paper mode (the default) may run
without an API key: the server then generates one at start and writes it to `<DATA_DIR>/api_key`
(mode 0600); see `ensure_api_key`.
"""

from __future__ import annotations

import logging
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hit_shared.models import TradingMode

log = logging.getLogger(__name__)

SERVER_ROOT = Path(__file__).resolve().parents[2]  # trading-server/
DEFAULT_LOG_DIR = SERVER_ROOT.parent / "logs"  # logs/ at the repository root, beside the bot's
DEFAULT_DATA_DIR = SERVER_ROOT / "data"
MIN_API_KEY_LENGTH = 32
MIN_DASHBOARD_PASSWORD_LENGTH = 12
BLOFIN_URLS = {
    TradingMode.DEMO: "https://demo-trading-openapi.blofin.com",
    TradingMode.LIVE: "https://openapi.blofin.com",
}
API_KEY_FILE = "api_key"


def settings_problems(exc: ValidationError) -> str:
    """What is wrong with the configuration, in one line (the programs print it instead of a traceback)."""
    return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())


class SettingsError(ValueError):
    """A configuration that must not start; the message names the setting to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=SERVER_ROOT / ".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    trading_mode: TradingMode = TradingMode.PAPER
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()

    blofin_api_key: SecretStr = SecretStr("")
    blofin_api_secret: SecretStr = SecretStr("")
    blofin_passphrase: SecretStr = SecretStr("")
    blofin_base_url: str | None = None
    exchange_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    max_position_size_usd: Decimal = Field(default=Decimal(1000), gt=0)
    risk_per_trade_percent: Decimal = Field(default=Decimal(1), gt=0, le=100)
    default_leverage: int = Field(default=5, ge=1, le=150)
    max_leverage: int = Field(default=20, ge=1, le=150)
    margin_mode: Literal["cross", "isolated"] = "cross"
    max_open_positions: int = Field(default=5, ge=1)
    max_entry_deviation_percent: Decimal = Field(default=Decimal(5), gt=0)
    max_stop_distance_percent: Decimal = Field(default=Decimal(50), gt=0)  # a market entry's stop and TP1
    max_signal_age_seconds: int = Field(default=300, ge=1)

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    # issue #19: every accepted signal is also fanned out to the stored enabled accounts, one job each on
    # the job queue, for the fleet's workers (`python -m hit_server worker`); needs DATABASE_URL (PostgreSQL)
    fleet: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    max_body_bytes: int = Field(default=65536, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    paper_price_source: Literal["model", "blofin"] = "model"
    paper_balance: Decimal = Field(default=Decimal(10000), gt=0)
    paper_seed: int = 0
    paper_price_walk: bool = True  # false freezes model prices (tests move them through the simulator)
    log_dir: Path = DEFAULT_LOG_DIR
    # TLS served by uvicorn itself (both or neither); a reverse proxy in front is the other way
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    # the position monitor (monitor.py, lifecycle.py)
    monitor_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    stop_policy: Literal["breakeven_after_tp1", "none"] = "breakeven_after_tp1"
    entry_timeout_minutes: float = Field(default=1440.0, gt=0)
    reconcile_minutes: float = Field(default=5.0, gt=0)
    # how long an order's absence must last before it counts as proven (reconcile.py)
    reconcile_grace_seconds: float = Field(default=120.0, gt=0, le=86400)
    monitor_websocket: bool = True
    # the mark price of every live instrument streamed from the start (server.py `open_marks`), so a first
    # signal on a symbol reads none; false: only the symbols of open trades and of signals, once named
    watch_all_marks: bool = True
    discord_webhook_url: SecretStr | None = None

    # the web dashboard under /dashboard (dashboard/): log in with an API key or this password
    dashboard_enabled: bool = True
    dashboard_password: SecretStr | None = None
    # signs the session cookie; empty: a random secret per start (everyone logs in again after a restart)
    dashboard_session_secret: SecretStr | None = None
    dashboard_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)

    # the key that encrypts the accounts' BloFin keys at rest (accounts/crypto.py): the key itself, or a
    # file holding it; neither: <DATA_DIR>/master_key, generated when the first account's keys are stored
    hit_master_key: SecretStr | None = None
    hit_master_key_file: Path | None = None

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "data_dir",
        "log_dir",
        "database_url",
        "blofin_base_url",
        "discord_webhook_url",
        "ssl_certfile",
        "ssl_keyfile",
        "dashboard_password",
        "dashboard_session_secret",
        "hit_master_key",
        "hit_master_key_file",
        mode="before",
    )
    @classmethod
    def _empty_is_default(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and not value.strip():
            defaults: dict[str, object] = {"data_dir": DEFAULT_DATA_DIR, "log_dir": DEFAULT_LOG_DIR}
            return defaults.get(info.field_name or "")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if self.default_leverage > self.max_leverage:
            raise ValueError("DEFAULT_LEVERAGE must not exceed MAX_LEVERAGE")
        if self.reconcile_grace_seconds < 2 * self.exchange_timeout_seconds:
            raise ValueError(
                "RECONCILE_GRACE_SECONDS must be at least twice EXCHANGE_TIMEOUT_SECONDS: an order sent "
                "just before may still be in flight"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("SSL_CERTFILE and SSL_KEYFILE go together: set both, or neither")
        for tls_file in (self.ssl_certfile, self.ssl_keyfile):
            if tls_file is not None and not tls_file.is_file():
                raise ValueError(f"TLS file {tls_file} does not exist")
        self._check_dashboard()
        self._check_fleet()
        webhook = self.discord_webhook_url
        if webhook is not None and not webhook.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("DISCORD_WEBHOOK_URL must be an http(s) URL")
        if self.trading_mode is TradingMode.PAPER:
            self._check_keys(required=False)
            return self
        mode = self.trading_mode.value
        for name in ("blofin_api_key", "blofin_api_secret", "blofin_passphrase"):
            if not getattr(self, name).get_secret_value():
                raise ValueError(f"{name.upper()} is required in {mode} mode")
        self._check_keys(required=True)
        return self

    def _check_fleet(self) -> None:
        if self.fleet and not (self.database_url or "").startswith("postgresql"):
            raise ValueError("FLEET needs the journal on PostgreSQL: set DATABASE_URL=postgresql+asyncpg://...")

    def _check_dashboard(self) -> None:
        password = self.dashboard_password
        if password is not None and len(password.get_secret_value()) < MIN_DASHBOARD_PASSWORD_LENGTH:
            raise ValueError(f"DASHBOARD_PASSWORD needs at least {MIN_DASHBOARD_PASSWORD_LENGTH} characters")

    def _check_keys(self, *, required: bool) -> None:
        if required and not self.api_keys:
            raise ValueError(f"API_KEYS is required in {self.trading_mode.value} mode")
        for key in self.api_keys:
            if len(key.get_secret_value()) < MIN_API_KEY_LENGTH:
                raise ValueError(f"every key in API_KEYS needs at least {MIN_API_KEY_LENGTH} characters")

    @property
    def exchange_url(self) -> str | None:
        """The BloFin REST root; None in paper mode without an override (the in-process simulator)."""
        if self.blofin_base_url:
            return self.blofin_base_url.rstrip("/")
        return BLOFIN_URLS.get(self.trading_mode)

    @property
    def journal_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'journal.db'}"

    def key_values(self) -> tuple[str, ...]:
        return tuple(key.get_secret_value() for key in self.api_keys)


def ensure_api_key(settings: Settings) -> Settings:
    """Settings with at least one API key. In paper mode without API_KEYS, reuse the key stored in
    `<DATA_DIR>/api_key` or generate one there (0600); the caller reads it from that file."""
    if settings.api_keys:
        return settings
    path = settings.data_dir / API_KEY_FILE
    key = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if len(key) < MIN_API_KEY_LENGTH:
        key = secrets.token_urlsafe(32)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
        os.chmod(path, 0o600)
        log.warning("No API_KEYS set: generated a paper-mode API key; read it from %s", path)
    else:
        log.info("No API_KEYS set: using the paper-mode API key stored in %s", path)
    return settings.model_copy(update={"api_keys": (SecretStr(key),)})
