"""Data every request reads and that rarely changes, held by each process.

A process keeps its copy while a small version key in the shared cache says it is
current: a change sets a new version (`forget`), and every process reloads on its next
read. Without a shared cache (`make run` without Redis), or for a change that sends no
signal (a data migration, SQL by hand), a copy is kept at most `seconds`. Used for the
custom field definitions (crm.fields.schema), the data-dictionary items
(crm.dictionary_copy) and the active people (crm.people_copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar
from uuid import uuid4

from django.core.cache import cache

T = TypeVar("T")


class ProcessCopy(Generic[T]):
    def __init__(self, version_key: str, load: Callable[[], T], *, seconds: float) -> None:
        self.version_key, self.load, self.seconds = version_key, load, seconds
        self._held: tuple[str | None, float, T | None] = (None, 0.0, None)

    def get(self) -> T:
        """The copy, reloaded when the version changed or it is older than `seconds`.
        Shared by the process's requests: read it, never change it."""
        version = cache.get(self.version_key)
        if version is None:
            cache.add(self.version_key, uuid4().hex, None)
            version = cache.get(self.version_key)
        held, loaded, value = self._held
        now = time.monotonic()
        if value is None or version is None or held != version or now - loaded > self.seconds:
            value = self.load()
            self._held = (version, now, value)
        return value

    def forget(self) -> None:
        """This process drops its copy now, every other one on its next read."""
        self._held = (None, 0.0, None)
        cache.set(self.version_key, uuid4().hex, None)
