"""Encryption of cloud credentials at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key is ORBIS_SECRET_KEY (a Fernet key, or any passphrase, which is stretched into one), or
else a key file generated once in ORBIS_HOME with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretError(Exception):
    pass


def _fernet_key(secret: str) -> bytes:
    raw = secret.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    # a passphrase: derive a key (PBKDF2, fixed salt: the key must be the same every start)
    derived = hashlib.pbkdf2_hmac("sha256", raw, b"orbis-credentials", 200_000)
    return base64.urlsafe_b64encode(derived)


def load_key(home: Path, secret: str | None) -> bytes:
    if secret:
        return _fernet_key(secret)
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # O_EXCL: two servers starting at once must not write two different keys
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
    return path.read_bytes().strip()


class Sealer:
    """Seals JSON-able values into opaque text and back."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A key for another use (e.g. owner marks), derived from this one: the server secret
        itself never leaves this object."""
        return hmac.new(self._key, b"orbis-derive\x00" + purpose.encode(), hashlib.sha256).digest()

    @classmethod
    def for_home(cls, home: Path, secret: str | None) -> Sealer:
        return cls(load_key(home, secret))

    def seal(self, value: object) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, token: str) -> object:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            raise SecretError("stored credentials cannot be decrypted with this key") from None

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"
