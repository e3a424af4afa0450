"""A fixed-window limit on how often something may be asked, kept in the cache (Redis in
production, so every web process counts together): e.g. password reset emails, per IP
address and per email address. `hit` counts an attempt and says whether it is allowed."""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache


def _key(scope: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"throttle:{scope}:{digest}"


def hit(scope: str, value: str, *, limit: int, window: int) -> int:
    """Count one attempt for `value` in `scope`. Returns 0 when it is allowed, otherwise
    the seconds until the window ends. The count is one atomic increment (Redis's INCR)
    so that requests arriving together are all counted."""
    if not value:
        return 0
    key = _key(scope, value)
    now = int(time.time())
    if cache.add(key, 1, timeout=window):
        cache.set(f"{key}:start", now, timeout=window)
        return 0
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add() and incr()
        cache.add(key, 1, timeout=window)
        cache.set(f"{key}:start", now, timeout=window)
        return 0
    if count <= limit:
        return 0
    started = cache.get(f"{key}:start", now)
    return max(1, started + window - now)


def minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def reset(scope: str, value: str) -> None:
    key = _key(scope, value)
    cache.delete_many([key, f"{key}:start"])
