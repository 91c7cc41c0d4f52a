"""Settings: comma-separated ids, defaults, and one clear sentence for a missing or malformed key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hit_bot.settings import BotSettings, SettingsError, load_server_settings, load_settings

REQUIRED = {
    "DISCORD_TOKEN": "a-token",
    "DISCORD_CHANNEL_IDS": "11, 12",
    "TRADING_SERVER_URL": "http://127.0.0.1:8000/",
    "TRADING_SERVER_API_KEY": "k" * 40,
}


def test_settings_read_ids_and_defaults_from_an_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("\n".join(f"{k}={v}" for k, v in REQUIRED.items()) + "\nALLOWED_ROLE_IDS=5,6\n"
                   "NOTIFY_CHANNEL_ID=\nlog_level=debug\n")
    settings = load_settings(env)
    assert settings.discord_channel_ids == (11, 12)
    assert settings.allowed_role_ids == (5, 6) and settings.allowed_user_ids == ()
    assert settings.notify_channel_id is None
    assert settings.trading_server_url == "http://127.0.0.1:8000"
    assert settings.command_prefix == "!" and settings.log_level == "DEBUG"
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.discord_gateway_url == "wss://gateway.discord.gg/"
    assert "a-token" not in repr(settings) and "k" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DISCORD_TOKEN": None}, "DISCORD_TOKEN is missing"),
        ({"DISCORD_CHANNEL_IDS": "12, twelve"}, "DISCORD_CHANNEL_IDS is malformed"),
        ({"DISCORD_CHANNEL_IDS": ""}, "DISCORD_CHANNEL_IDS is malformed"),
        ({"TRADING_SERVER_URL": "localhost:8000"}, "TRADING_SERVER_URL is malformed: must be an http"),
        ({"ADMIN_ROLE_IDS": "1;2"}, "ADMIN_ROLE_IDS is malformed"),
        ({"MAX_SIGNAL_AGE_SECONDS": "-5"}, "MAX_SIGNAL_AGE_SECONDS is malformed"),
        ({"DISCORD_GATEWAY_URL": "http://x"}, "DISCORD_GATEWAY_URL is malformed: must be a ws://"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL is malformed"),
        ({"FOLLOW_MANAGEMENT": "yes"}, "FOLLOW_MANAGEMENT is malformed: Input should be 'off', 'confirm' or"),
        ({"FOLLOW_MANAGEMENT_CHANNELS": "11=act"}, "MANAGEMENT_CHANNELS is malformed: '11=act' is not"),
        ({"FOLLOW_MANAGEMENT_CHANNELS": "eleven:act"}, "MANAGEMENT_CHANNELS is malformed: 'eleven:act'"),
        ({"FOLLOW_MANAGEMENT_CHANNELS": "11:always"}, "FOLLOW_MANAGEMENT_CHANNELS is malformed: '11:always'"),
        ({"FOLLOW_MANAGEMENT_CHANNELS": "11:act,99:off"}, "channel 99 is not in DISCORD_CHANNEL_IDS"),
        ({"FOLLOW_CONFIRM_SECONDS": "0"}, "FOLLOW_CONFIRM_SECONDS is malformed"),
    ],
)
def test_settings_name_the_bad_key(monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str | None],
                                   expected: str) -> None:
    for key, value in {**REQUIRED, **overrides}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings(None)


def test_settings_follow_management_defaults_to_confirm_with_a_mode_per_channel_over_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FOLLOW_MANAGEMENT", raising=False)
    monkeypatch.delenv("FOLLOW_MANAGEMENT_CHANNELS", raising=False)
    default = load_settings(None)
    assert (default.follow_mode(11), default.follow_mode(12)) == ("confirm", "confirm")
    assert default.follow_confirm_seconds == 300
    monkeypatch.setenv("FOLLOW_MANAGEMENT", " Act ")
    monkeypatch.setenv("FOLLOW_MANAGEMENT_CHANNELS", " 12 : OFF , ")
    per_channel = load_settings(None)
    assert per_channel.follow_management_channels == {12: "off"}
    assert (per_channel.follow_mode(11), per_channel.follow_mode(12)) == ("act", "off")


def test_settings_for_replay_need_only_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_SERVER_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("TRADING_SERVER_API_KEY", "x" * 32)
    assert load_server_settings(None).trading_server_url == "http://127.0.0.1:1"
    with pytest.raises(SettingsError, match="DISCORD_TOKEN is missing"):
        load_settings(None)


def test_settings_trading_server_url_defaults_to_the_servers_default_bind_but_the_key_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("TRADING_SERVER_URL=\n")  # as left by a copied .env.example with the value cleared
    monkeypatch.setenv("TRADING_SERVER_API_KEY", "x" * 32)
    assert load_server_settings(None).trading_server_url == "http://127.0.0.1:8000"
    assert load_server_settings(env).trading_server_url == "http://127.0.0.1:8000"
    monkeypatch.delenv("TRADING_SERVER_API_KEY")
    with pytest.raises(SettingsError, match="TRADING_SERVER_API_KEY is missing"):
        load_server_settings(None)


def test_bot_main_stops_with_a_sentence_and_no_traceback_when_a_setting_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {*REQUIRED, "ALLOWED_USER_IDS"}}
    env.update({k: v for k, v in REQUIRED.items() if k != "DISCORD_TOKEN"})
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "hit_bot", "--env-file", str(empty)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "hit-bot cannot start: DISCORD_TOKEN is missing: set it in the environment or in discord-bot/.env.")
    assert "Traceback" not in result.stderr


def test_settings_example_env_documents_every_key_and_loads_once_filled(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    lines = example.read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert keys == {name.upper() for name in BotSettings.model_fields}
    filled = [f"{line}{REQUIRED[line[:-1]]}" if line[:-1] in REQUIRED else line for line in lines]
    env = tmp_path / ".env"
    env.write_text("\n".join(filled))
    settings = load_settings(env)
    assert settings.discord_channel_ids == (11, 12) and settings.admin_role_ids == ()
    assert settings.max_signal_age_seconds == 300 and settings.notify_channel_id is None


def test_settings_state_dir_defaults_beside_the_bot_whatever_the_working_directory(tmp_path, monkeypatch):
    from hit_bot.settings import DEFAULT_STATE_DIR, load_settings

    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=t0ken\nDISCORD_CHANNEL_IDS=1\nTRADING_SERVER_URL=http://127.0.0.1:1\n"
                        "TRADING_SERVER_API_KEY=k\nSTATE_DIR=\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env_file)
    assert settings.state_dir == DEFAULT_STATE_DIR
    assert settings.state_dir.is_absolute() and settings.state_dir.parent.name == "discord-bot"
