"""API key strings: `jpk_<clientId>_<secret><checksum>`, made, parsed and hashed."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

KEY_PREFIX = "jpk_"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CLIENT_ID = re.compile(r"^[a-z0-9]{20}$")
_SECRET = re.compile(r"^[0-9A-Za-z]{40}$")
_CRC_LEN = 6


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_client_id() -> str:
    return _random("abcdefghijklmnopqrstuvwxyz0123456789", 20)


def new_secret() -> str:
    """40 base62 characters: about 238 bits, so a fast hash is enough."""
    return _random(_B62, 40)


def key_string(client_id: str, secret: str) -> str:
    """The one string people paste: `jpk_<clientId>_<secret><crc>`; greppable, typo-checked."""
    body = f"{KEY_PREFIX}{client_id}_{secret}"
    return body + _b62(zlib.crc32(body.encode()), _CRC_LEN)


def parse_key_string(value: str) -> tuple[str, str]:
    """(client id, secret) of a key string; ValueError if its shape or checksum is wrong."""
    if not value.startswith(KEY_PREFIX):
        raise ValueError("not a jobport key (it should start with 'jpk_')")
    client_id, sep, rest = value[len(KEY_PREFIX) :].partition("_")
    secret = rest[:-_CRC_LEN]
    if not sep or not _CLIENT_ID.match(client_id) or not _SECRET.match(secret):
        raise ValueError("malformed jobport key")
    if not hmac.compare_digest(key_string(client_id, secret), value):
        raise ValueError("the key's checksum does not match: it was mistyped or truncated")
    return client_id, secret


def looks_like_client_id(value: str) -> bool:
    return bool(_CLIENT_ID.match(value))


def hash_secret(secret: str, pepper: str = "") -> str:
    """HMAC-SHA256 of the secret with the server pepper (the secret is random: no slow hash)."""
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str | None, pepper: str = "") -> bool:
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(secret, pepper), stored_hash)
