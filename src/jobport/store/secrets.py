"""Secrets at rest: the Fernet key that encrypts connections' passwords and header values.

The key comes from `JOBPORT_ENCRYPTION_KEY`, else from the key file (`.jobport/encryption.key`
by default), which the first process that needs it makes with mode 0600. Fernet (from
`cryptography`) is AES-128-CBC with an HMAC-SHA256: a token that was altered, or made with
another key, does not decrypt at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from jobport.errors import JobportError


class Cipher:
    """Encrypts and decrypts JSON values with one Fernet key."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise JobportError(
                "the encryption key is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')",
                code="bad_encryption_key",
            ) from exc

    def encrypt(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def decrypt(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise JobportError(
                "a stored secret does not decrypt with this server's encryption key (was "
                "JOBPORT_ENCRYPTION_KEY or the key file changed, or does another node use "
                "another key?)",
                code="bad_encryption_key",
            ) from exc


def load_cipher(key: str, key_file: str | Path) -> Cipher:
    """The cipher of `key`, else of the key in `key_file`, made (mode 0600) if absent."""
    if key:
        return Cipher(key.strip())
    path = Path(key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under another name, then linked into place: of two processes starting
        # at once, one key wins and neither reads a half-written file.
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key() + b"\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return Cipher(path.read_bytes().strip())
