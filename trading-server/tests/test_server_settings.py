"""Settings refuse unsafe configurations by name; paper mode generates its API key safely."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hit_server.settings import API_KEY_FILE, Settings, ensure_api_key

GOOD_KEY = "k" * 32


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("mode", ["demo", "live"])
@pytest.mark.parametrize("missing", ["blofin_api_key", "blofin_api_secret", "blofin_passphrase"])
def test_settings_refuse_real_modes_without_blofin_credentials(mode: str, missing: str) -> None:
    values = {"blofin_api_key": "a", "blofin_api_secret": "b", "blofin_passphrase": "c", "api_keys": GOOD_KEY}
    values[missing] = ""

    with pytest.raises(ValidationError, match=missing.upper()):
        make(trading_mode=mode, **values)


@pytest.mark.parametrize("keys", ["", "short-key", f"{GOOD_KEY},short"])
def test_settings_refuse_live_without_a_long_api_key(keys: str) -> None:
    with pytest.raises(ValidationError, match="API_KEYS"):
        make(
            trading_mode="live",
            blofin_api_key="a",
            blofin_api_secret="b",
            blofin_passphrase="c",
            api_keys=keys,
        )


def test_settings_default_to_paper_and_the_right_urls() -> None:
    paper = make()
    demo = make(
        trading_mode="demo",
        blofin_api_key="a",
        blofin_api_secret="b",
        blofin_passphrase="c",
        api_keys=GOOD_KEY,
    )
    standalone = make(blofin_base_url="http://127.0.0.1:8900/")

    assert paper.trading_mode == "paper" and paper.exchange_url is None
    assert demo.exchange_url == "https://demo-trading-openapi.blofin.com"
    assert standalone.exchange_url == "http://127.0.0.1:8900"
    assert paper.host == "127.0.0.1" and paper.port == 8000 and paper.rate_limit_per_minute == 600


def test_settings_read_comma_separated_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", f"{GOOD_KEY}, {'z' * 40}")
    monkeypatch.setenv("TRADING_MODE", "paper")

    assert make().key_values() == (GOOD_KEY, "z" * 40)


def test_settings_hide_secrets_in_repr() -> None:
    settings = make(api_keys=GOOD_KEY, blofin_api_secret="very-secret-value")

    assert GOOD_KEY not in repr(settings) and "very-secret-value" not in repr(settings)


def test_settings_paper_key_is_generated_once_with_0600(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    first = ensure_api_key(make(data_dir=tmp_path))
    second = ensure_api_key(make(data_dir=tmp_path))

    key = first.key_values()[0]
    path = tmp_path / API_KEY_FILE
    assert len(key) >= 32 and second.key_values() == (key,)
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in caplog.text and str(path) in caplog.text


def test_settings_default_leverage_above_max_is_refused() -> None:
    with pytest.raises(ValidationError, match="DEFAULT_LEVERAGE"):
        make(default_leverage=30, max_leverage=10)


def test_settings_env_example_documents_every_key_and_loads() -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    keys = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }

    assert keys == {name.upper() for name in Settings.model_fields}
    loaded = Settings(_env_file=example)
    assert loaded.trading_mode == "paper" and loaded.data_dir.name == "data" and loaded.log_dir.name == "logs"


def test_settings_tls_files_go_together_and_must_exist(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here beyond existence")
    with pytest.raises(ValidationError, match="SSL_CERTFILE and SSL_KEYFILE go together"):
        Settings(_env_file=None, ssl_certfile=cert)
    with pytest.raises(ValidationError, match="does not exist"):
        Settings(_env_file=None, ssl_certfile=cert, ssl_keyfile=tmp_path / "missing.pem")
    key = tmp_path / "key.pem"
    key.write_text("x")
    assert Settings(_env_file=None, ssl_certfile=cert, ssl_keyfile=key).ssl_keyfile == key
