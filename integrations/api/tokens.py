"""The token's text: how it is made, split and hashed. No database here.

A token reads `kd_<prefix>_<secret>`: `kd` says whose token it is (a secret scanner can
look for it), the prefix (8 hex characters) is stored in clear to find the row, and the
secret (32 random bytes, URL-safe) is what makes it unguessable. Only the SHA-256 of the
whole token is stored; a high-entropy token needs no slow hash (nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_TAG = "kd"  # noqa: S105 - the tokens' marker, no secret
PREFIX_BYTES = 4  # 8 hex characters
SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 200  # longer is no token of ours: refused before any work


@dataclass(frozen=True)
class NewToken:
    prefix: str
    text: str  # the full token, shown once

    @property
    def hash(self) -> str:
        return hash_token(self.text)


def generate() -> NewToken:
    prefix = secrets.token_hex(PREFIX_BYTES)
    return NewToken(prefix, f"{TOKEN_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}")


def hash_token(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prefix_of(text: str) -> str | None:
    """The prefix of something shaped like one of our tokens, else None."""
    if not text or len(text) > MAX_TOKEN_LENGTH:
        return None
    parts = text.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_TAG or not parts[2]:
        return None
    prefix = parts[1]
    if len(prefix) != PREFIX_BYTES * 2 or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def matches(text: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(text), stored_hash)
