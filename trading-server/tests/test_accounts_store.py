"""The accounts registry (issue #19): stored on SQLite and PostgreSQL, keys encrypted at rest, rotated,
disabled accounts left out of `enabled_accounts`, a wrong master key named per account, never a secret
in a log line."""

from __future__ import annotations

import base64
import logging
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from hit_server.accounts.crypto import MasterKey, MasterKeyError
from hit_server.accounts.models import AccountChange, AccountCreate, AccountKeys
from hit_server.accounts.store import ACCOUNTS, AccountConflict, AccountNotFound, AccountStore
from hit_server.journal.db import Database
from hit_server.testing import paper_settings

API_KEY = "ak-alice-0123456789abcdef"
SECRET = "SECRET-of-alice-never-stored-in-clear-7f3e"
PASSPHRASE = "PASSPHRASE-of-alice-9q8w"
SECRETS = (API_KEY, SECRET, PASSPHRASE)


def new_account(name: str = "alice", **fields: object) -> AccountCreate:
    return AccountCreate.model_validate(
        {"name": name, "api_key": API_KEY, "api_secret": SECRET, "passphrase": PASSPHRASE, **fields}
    )


async def open_store(url: str, data_dir: Path, **overrides: object) -> tuple[Database, AccountStore]:
    db = Database(url)
    await db.create_schema()
    return db, AccountStore(db, paper_settings(data_dir, database_url=url, **overrides))


async def test_accounts_round_trip_encrypted_at_rest(
    journal_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db, store = await open_store(journal_url, tmp_path)
    try:
        added = await store.add(new_account(risk_per_trade_percent="0.5", allowed_symbols=["BTC-USDT"]))
        assert added.keys == "stored" and added.key_hint == "ak-a…"
        assert added.risk_per_trade_percent == Decimal("0.5") and added.max_leverage is None
        master_key = tmp_path / "master_key"
        assert stat.S_IMODE(master_key.stat().st_mode) == 0o600
        listed = await store.list()
        assert [a.name for a in listed] == ["default", "alice"]
        assert listed[0].keys == "none"  # paper mode's default account needs no keys
        rows = await db.transaction(lambda conn: conn.execute(select(ACCOUNTS)).mappings().all())
        stored_text = repr([dict(row) for row in rows])
        for secret in SECRETS:
            assert secret not in stored_text
        assert all(row["api_secret"].startswith("v1:") for row in rows)
        if journal_url.startswith("sqlite"):  # the file itself (and its write-ahead log) hold no secret
            raw = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*"))  # noqa: ASYNC240
            assert b"alice" in raw
            for secret in SECRETS:
                assert secret.encode() not in raw
        enabled = await store.enabled_accounts()
        assert enabled.unreadable == {}
        (alice,) = enabled.ready
        assert alice.credentials.api_key == API_KEY
        assert alice.credentials.api_secret.get_secret_value() == SECRET
        assert alice.credentials.passphrase.get_secret_value() == PASSPHRASE
        assert alice.risk_per_trade_percent == Decimal("0.5")
        assert alice.max_position_size_usd == Decimal(1000)  # the server's setting
        assert alice.may_trade("BTC-USDT") and not alice.may_trade("ETH-USDT")
        for secret in SECRETS[1:]:
            assert secret not in repr(alice) and secret not in repr(listed)
        with pytest.raises(AccountConflict, match="exists already"):
            await store.add(new_account())
        with pytest.raises(AccountConflict, match="server's own settings"):
            await store.add(new_account("default"))
    finally:
        await db.dispose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "master_key" in logged  # where it is said, never what it is
    for secret in (*SECRETS, master_key.read_text().strip()):
        assert secret not in logged


async def test_rotate_disable_and_change(journal_url: str, tmp_path: Path) -> None:
    db, store = await open_store(journal_url, tmp_path)
    try:
        await store.add(new_account())
        await store.add(new_account("bob", api_key="ak-bob-0123456789", egress_group="eu-1", max_leverage=3))
        before = await db.transaction(
            lambda conn: conn.execute(
                select(ACCOUNTS.c.api_secret).where(ACCOUNTS.c.name == "alice")
            ).scalar()
        )
        keys = AccountKeys(
            api_key=SecretStr("ak-new-key-9999"),
            api_secret=SecretStr("NEW-secret-1"),
            passphrase=SecretStr("NEW-pass-1"),
        )
        rotated = await store.rotate_keys("alice", keys)
        assert rotated.key_hint == "ak-…"
        after = await db.transaction(
            lambda conn: conn.execute(
                select(ACCOUNTS.c.api_secret).where(ACCOUNTS.c.name == "alice")
            ).scalar()
        )
        assert after != before
        await store.set_enabled("bob", False)
        ready = (await store.enabled_accounts()).ready
        assert [(a.name, a.credentials.api_secret.get_secret_value()) for a in ready] == [
            ("alice", "NEW-secret-1")
        ]
        await store.set_enabled("bob", True)
        assert [a.name for a in (await store.enabled_accounts("eu-1")).ready] == ["bob"]
        assert [a.max_leverage for a in (await store.enabled_accounts("eu-1")).ready] == [3]
        changed = await store.change("bob", AccountChange.model_validate({"max_leverage": None}))
        assert changed.max_leverage is None and changed.egress_group == "eu-1"
        with pytest.raises(AccountNotFound):
            await store.change("carol", AccountChange(enabled=False))
        with pytest.raises(AccountNotFound):
            await store.rotate_keys("carol", keys)
        with pytest.raises(AccountConflict):
            await store.set_enabled("default", False)
    finally:
        await db.dispose()


async def test_a_wrong_master_key_names_the_account_and_trades_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    first = MasterKey.generate()
    db, store = await open_store(url, tmp_path, hit_master_key=first)
    await store.add(new_account())
    await db.dispose()
    assert not (tmp_path / "master_key").exists()  # HIT_MASTER_KEY given: no file generated
    other = base64.urlsafe_b64encode(os.urandom(32)).decode()
    db, store = await open_store(url, tmp_path, hit_master_key=other)
    try:
        enabled = await store.enabled_accounts()
        assert enabled.ready == []
        assert list(enabled.unreadable) == ["alice"]
        assert (
            "account 'alice'" in enabled.unreadable["alice"]
            and "Nothing is traded" in enabled.unreadable["alice"]
        )
        assert [a.name for a in await store.list()] == ["default", "alice"]  # listing needs no key
    finally:
        await db.dispose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" not in logged
    for secret in (*SECRETS, first, other):
        assert secret not in logged


async def test_master_key_sources(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    key_file = tmp_path / "elsewhere.key"
    key_file.write_text(MasterKey.generate() + "\n")
    db, store = await open_store(url, tmp_path, hit_master_key_file=str(key_file))
    try:
        await store.add(new_account())
        assert (await store.enabled_accounts()).ready[0].credentials.api_key == API_KEY
        assert not (tmp_path / "master_key").exists()
        key_file.write_text("not-a-key")
        with pytest.raises(MasterKeyError, match="not a key") as caught:
            await store.enabled_accounts()
        assert "not-a-key" not in str(caught.value)
    finally:
        await db.dispose()
    db, store = await open_store(url, tmp_path / "fresh")  # no key anywhere: reading refuses, names the fix
    try:
        with pytest.raises(MasterKeyError, match="No master key"):
            await store.enabled_accounts()
    finally:
        await db.dispose()


async def test_one_blofin_account_is_never_registered_twice(journal_url: str, tmp_path: Path) -> None:
    """The same API key under two names would trade one BloFin account twice, doubling every order:
    refused on add and on rotation, and so is the server's own key (the account `default`)."""
    db, store = await open_store(journal_url, tmp_path, blofin_api_key="ak-the-servers-own-key")
    try:
        await store.add(new_account())
        with pytest.raises(AccountConflict, match="belongs to the account 'alice'"):
            await store.add(new_account("bob"))
        with pytest.raises(AccountConflict, match="server's own BloFin keys"):
            await store.add(new_account("bob", api_key="ak-the-servers-own-key"))
        await store.add(new_account("bob", api_key="ak-bob-0123456789"))
        alices = AccountKeys(api_key=SecretStr(API_KEY), api_secret=SecretStr("s"), passphrase=SecretStr("p"))
        with pytest.raises(AccountConflict, match="belongs to the account 'alice'"):
            await store.rotate_keys("bob", alices)
        rotated = await store.rotate_keys("alice", alices)  # its own key again: fine
        assert rotated.name == "alice"
        assert [a.name for a in await store.list()] == ["default", "alice", "bob"]
        stored = await db.transaction(lambda conn: list(conn.scalars(select(ACCOUNTS.c.key_fingerprint))))
        assert len(set(stored)) == 2 and all(len(f) == 64 and API_KEY not in f for f in stored)
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Has Spaces"},
        {"name": "a" * 40},
        {"risk_per_trade_percent": "0"},
        {"max_leverage": 151},
        {"allowed_symbols": ["btc usdt"]},
        {"egress_group": ""},
        {"api_secret": ""},
        {"api_key": " padded "},
        {"unknown": 1},
    ],
)
def test_bad_account_input_is_refused_by_the_models(bad: dict[str, object]) -> None:
    body = {"name": "alice", "api_key": API_KEY, "api_secret": SECRET, "passphrase": PASSPHRASE, **bad}
    with pytest.raises(ValidationError) as caught:
        AccountCreate.model_validate(body)
    assert SECRET not in str(caught.value)
