"""The signed token a form carries: which form, when it was handed out, and a random
nonce. Signed (django.core.signing) so a bot cannot make its own; the time lets a
submission sent faster than a person types be refused, an old one too; the nonce makes
the same token sent twice one submission."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "webforms.token"
FIELD = "_wf_token"


@dataclass(frozen=True)
class Token:
    form_id: int
    issued: float
    nonce: str


class TokenProblem(Exception):
    """`code`: "missing", "invalid", "expired" or "too_fast"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def min_seconds() -> float:
    return float(getattr(settings, "WEBFORMS_MIN_SECONDS", 2))


def max_age() -> int:
    return int(getattr(settings, "WEBFORMS_TOKEN_MAX_AGE", 24 * 60 * 60))


def issue(form_id: int, *, now: float | None = None) -> str:
    """A fresh token for the form (`now`: the moment it counts as handed out)."""
    issued = time.time() if now is None else now
    payload = {"f": form_id, "t": round(issued, 2), "n": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=SALT, compress=False)


def check(value: str, form_id: int, *, now: float | None = None) -> Token:
    """The token if it is this form's, was handed out at least `min_seconds()` ago and at
    most `max_age()` ago; otherwise TokenProblem."""
    if not value:
        raise TokenProblem("missing")
    if not isinstance(value, str) or len(value) > 300:
        raise TokenProblem("invalid")
    try:
        payload = signing.loads(value, salt=SALT)
    except signing.BadSignature:
        raise TokenProblem("invalid") from None
    try:
        token = Token(int(payload["f"]), float(payload["t"]), str(payload["n"])[:64])
    except (KeyError, TypeError, ValueError):
        raise TokenProblem("invalid") from None
    if token.form_id != form_id:
        raise TokenProblem("invalid")
    age = (time.time() if now is None else now) - token.issued
    if age > max_age():
        raise TokenProblem("expired")
    if age < min_seconds():
        raise TokenProblem("too_fast")
    return token
