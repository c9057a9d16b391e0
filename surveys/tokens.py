"""Invitation tokens: random, shown once, stored only as a SHA-256 hash and looked up by it."""

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # A plain SHA-256 suffices: the token has 256 bits of entropy, so no salt or stretching.
    return hashlib.sha256(token.encode()).hexdigest()
