"""The bot's configuration: one pydantic-settings class, read from the environment and `discord-bot/.env`.

`ServerSettings` is what talking to the trading server needs (replay uses only this); `BotSettings` adds
Discord. Build them once with `load_settings` / `load_server_settings`: a missing or malformed key becomes
a `SettingsError` whose message names the key, so `__main__` can stop with one sentence, no traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ENV_FILE = Path(__file__).resolve().parents[2] / ".env"
DEFAULT_LOG_DIR = Path(__file__).resolve().parents[3] / "logs"  # logs/ at the repository root
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[2] / "bot-state"  # discord-bot/bot-state
DEFAULT_TRADING_SERVER_URL = "http://127.0.0.1:8000"  # where the trading server binds by default

IdList = Annotated[tuple[int, ...], NoDecode]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# What the bot does with a channel's management messages ("close half", "SL to entry": issue #17): nothing,
# ask an admin first, or act at once.
FollowMode = Literal["off", "confirm", "act"]
FOLLOW_MODES: tuple[FollowMode, ...] = ("off", "confirm", "act")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and is safe to show as is."""


def _split_ids(value: Any) -> Any:
    """`"1, 2,3"` -> (1, 2, 3); empty -> (). Anything not an id is left for pydantic to refuse."""
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        return tuple(part for part in parts if part)
    return value


class ServerSettings(BaseSettings):
    """How to reach the trading server."""

    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    trading_server_url: str = DEFAULT_TRADING_SERVER_URL
    trading_server_api_key: SecretStr  # no default: the bot must be given one of the server's API_KEYS
    trading_deadline_seconds: float = Field(default=30.0, gt=0, le=600)
    trading_attempt_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    log_level: LogLevel = "INFO"
    log_dir: Path = Field(default=DEFAULT_LOG_DIR, description="rotating log files go here")
    parser_vocabulary: Path | None = Field(
        default=None, description="a vocabulary file merged over the parser's words (docs/signals.md)"
    )

    @field_validator("log_dir", mode="before")
    @classmethod
    def _empty_log_dir(cls, value: Any) -> Any:
        return DEFAULT_LOG_DIR if isinstance(value, str) and not value.strip() else value

    @field_validator("parser_vocabulary", mode="before")
    @classmethod
    def _empty_vocabulary(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("trading_server_url", mode="before")
    @classmethod
    def _empty_url(cls, value: Any) -> Any:
        return DEFAULT_TRADING_SERVER_URL if isinstance(value, str) and not value.strip() else value

    @field_validator("trading_server_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value) < len("http://x"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("trading_server_api_key")
    @classmethod
    def _non_empty_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class BotSettings(ServerSettings):
    """Everything the Discord bot needs. Empty allow-lists mean everyone."""

    discord_token: SecretStr
    discord_channel_ids: IdList = Field(min_length=1)
    allowed_user_ids: IdList = ()
    allowed_role_ids: IdList = ()
    admin_role_ids: IdList = ()
    command_prefix: str = Field(default="!", min_length=1, max_length=5)
    state_dir: Path = DEFAULT_STATE_DIR  # a relative STATE_DIR is relative to the working directory
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    notify_channel_id: int | None = None
    max_signal_age_seconds: int = Field(default=300, gt=0, le=7 * 24 * 3600)
    events_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    guild_ready_timeout: float = Field(default=2.0, ge=0, le=60)
    sync_slash_commands: bool = True
    follow_management: FollowMode = "confirm"
    # per channel, over FOLLOW_MANAGEMENT: `2001:act, 2002:off`
    follow_management_channels: Annotated[dict[int, FollowMode], NoDecode] = Field(default_factory=dict)
    follow_confirm_seconds: float = Field(default=300.0, gt=0, le=24 * 3600)

    @field_validator("discord_channel_ids", "allowed_user_ids", "allowed_role_ids", "admin_role_ids",
                     mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("follow_management", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("follow_management_channels", mode="before")
    @classmethod
    def _channel_modes(cls, value: Any) -> Any:
        """`"2001:act, 2002:off"` -> {2001: "act", 2002: "off"}; empty -> {}."""
        if not isinstance(value, str):
            return value
        modes: dict[str, str] = {}
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            channel, colon, mode = part.partition(":")
            if not colon or not channel.strip().isdigit() or mode.strip().lower() not in FOLLOW_MODES:
                raise ValueError(
                    f"{part!r} is not channel_id:mode (mode one of {', '.join(FOLLOW_MODES)}), "
                    "e.g. 2001:act, 2002:off"
                )
            modes[channel.strip()] = mode.strip().lower()
        return modes

    @field_validator("follow_management_channels")
    @classmethod
    def _watched_channels(cls, value: dict[int, FollowMode], info: ValidationInfo) -> dict[int, FollowMode]:
        """A channel's own mode is for a channel the bot reads: another id is a typo, which would leave the
        channel it meant on FOLLOW_MANAGEMENT without a word."""
        watched = info.data.get("discord_channel_ids")
        if watched is None:  # DISCORD_CHANNEL_IDS itself is bad: that is the error to show
            return value
        unknown = [str(channel) for channel in value if channel not in watched]
        if unknown:
            raise ValueError(f"channel {', '.join(unknown)} is not in DISCORD_CHANNEL_IDS")
        return value

    def follow_mode(self, channel_id: int) -> FollowMode:
        """How this channel's management messages are followed: its own setting, else FOLLOW_MANAGEMENT."""
        return self.follow_management_channels.get(channel_id, self.follow_management)

    @field_validator("notify_channel_id", mode="before")
    @classmethod
    def _optional_id(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("state_dir", mode="before")
    @classmethod
    def _empty_state_dir(cls, value: Any) -> Any:
        return DEFAULT_STATE_DIR if isinstance(value, str) and not value.strip() else value

    @field_validator("discord_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("discord_api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("discord_gateway_url")
    @classmethod
    def _gateway(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return value


def describe_errors(error: ValidationError) -> str:
    """One sentence per bad setting, naming it as it is written in .env (upper case)."""
    sentences = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        if item["type"] == "missing":
            sentences.append(f"{name} is missing: set it in the environment or in discord-bot/.env.")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            sentences.append(f"{name} is malformed: {message}.")
    return " ".join(dict.fromkeys(sentences))


_S = TypeVar("_S", bound=ServerSettings)


def _load(cls: type[_S], env_file: Path | None, overrides: dict[str, Any]) -> _S:
    try:
        return cls(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None


def load_settings(env_file: Path | None = DEFAULT_ENV_FILE, **overrides: Any) -> BotSettings:
    """The bot's settings, or `SettingsError` naming every missing or malformed key."""
    return _load(BotSettings, env_file, overrides)


def load_server_settings(env_file: Path | None = DEFAULT_ENV_FILE, **overrides: Any) -> ServerSettings:
    """Only the trading-server part (what replay needs), or `SettingsError`."""
    return _load(ServerSettings, env_file, overrides)
