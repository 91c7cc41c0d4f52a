"""The master key and the encryption of the accounts' BloFin keys at rest (AES-256-GCM).

Where the master key comes from, first found wins:
1. `HIT_MASTER_KEY`: the key itself (in the environment or `trading-server/.env`);
2. `HIT_MASTER_KEY_FILE`: a file holding it;
3. `<DATA_DIR>/master_key`: generated there (mode 0600) the first time an account's keys are stored,
   like `<DATA_DIR>/api_key`. Only the file's path is ever logged or printed, never the key.

A key is 32 random bytes written as URL-safe base64 (44 characters; `MasterKey.generate`).

Each secret is sealed on its own with a fresh 96-bit nonce, and the account's name and the field's name
as associated data, so a ciphertext copied into another account's row or another column does not open.
A sealed value is text: `v1:` + base64(nonce + ciphertext and tag). A wrong master key, or a row changed
by hand, fails AES-GCM's tag check (done in constant time by `cryptography`) and becomes `KeyMismatch`,
whose message names the account and never contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hit_server.settings import Settings

log = logging.getLogger(__name__)

MASTER_KEY_FILE = "master_key"
KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_PREFIX = "v1:"


class MasterKeyError(ValueError):
    """No usable master key: the message says which setting or file to fix (never the key)."""


class KeyMismatch(ValueError):
    """A stored secret does not open with this master key (a wrong key, or a row changed by hand)."""

    def __init__(self, account: str) -> None:
        super().__init__(
            f"The keys of account '{account}' cannot be decrypted with this master key: it is not the key "
            "they were stored with (check HIT_MASTER_KEY / HIT_MASTER_KEY_FILE / <DATA_DIR>/master_key). "
            "Nothing is traded with this account."
        )
        self.account = account


@dataclass(frozen=True)
class MasterKey:
    """The 32-byte key; its `repr` shows where it came from, never the bytes."""

    raw: bytes = field(repr=False)
    source: str

    @staticmethod
    def generate() -> str:
        """A new key as text (what goes into HIT_MASTER_KEY or the key file)."""
        return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKey:
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(
                f"The master key from {source} is not a key: it must be {KEY_BYTES} bytes in URL-safe base64 "
                '(44 characters); make one with: python -c "import base64, os; '
                'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
            )
        return cls(raw, source)

    def seal(self, account: str, field_name: str, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.raw).encrypt(nonce, secret.encode(), _context(account, field_name))
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def fingerprint(self, api_key: str) -> str:
        """A keyed hash of an API key (HMAC-SHA256 under the master key): equal for equal keys, so the
        registry can refuse one BloFin account added twice, and useless to anyone without the master key."""
        return hmac.new(self.raw, b"hit-api-key:" + api_key.encode(), hashlib.sha256).hexdigest()

    def open(self, account: str, field_name: str, stored: str) -> str:
        """The secret, or `KeyMismatch` naming the account."""
        if not stored.startswith(SEALED_PREFIX):
            raise KeyMismatch(account)
        try:
            blob = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :].encode())
            nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
            plain = AESGCM(self.raw).decrypt(nonce, sealed, _context(account, field_name))
            return plain.decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise KeyMismatch(account) from exc


def _context(account: str, field_name: str) -> bytes:
    return f"hit-account:{account}:{field_name}".encode()


def key_file_path(settings: Settings) -> Path:
    return settings.data_dir / MASTER_KEY_FILE


def load_master_key(settings: Settings, *, create: bool) -> MasterKey:
    """The master key from the settings (see the module docstring). `create`: generate
    `<DATA_DIR>/master_key` when no key is set anywhere (storing keys); otherwise its absence is a
    `MasterKeyError` (reading keys: a new key could open nothing)."""
    if settings.hit_master_key is not None:
        return MasterKey.parse(settings.hit_master_key.get_secret_value(), "HIT_MASTER_KEY")
    if settings.hit_master_key_file is not None:
        return _read_key_file(settings.hit_master_key_file, "HIT_MASTER_KEY_FILE")
    path = key_file_path(settings)
    if path.exists():
        return _read_key_file(path, str(path))
    if not create:
        raise MasterKeyError(
            f"No master key: set HIT_MASTER_KEY or HIT_MASTER_KEY_FILE, or restore {path} "
            "(the key the accounts' keys were stored with)."
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(MasterKey.generate() + "\n")
    os.chmod(path, 0o600)
    log.warning(
        "Generated the accounts' master key in %s (mode 0600): back it up; without it the stored "
        "accounts' keys cannot be read",
        path,
    )
    return _read_key_file(path, str(path))


def _read_key_file(path: Path, source: str) -> MasterKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MasterKeyError(f"The master key file {path} ({source}) cannot be read: {exc.strerror}") from exc
    return MasterKey.parse(text, str(path))
