"""How far a background job is, as its progress bar shows it (imports and exports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    percent: int
    rate: int | None  # rows per second so far
    left: int | None  # seconds, at that rate


def measure(
    done: int, total: int, *, started_at: datetime | None, running: bool, finished: bool
) -> Progress:
    """`done` of `total` rows: the share (100 only once finished), and while running the
    rate so far and the time left at that rate."""
    percent = 100 if finished else min(int(done * 100 / total), 99) if total else 0
    rate = left = None
    if running and started_at and done:
        seconds = max((timezone.now() - started_at).total_seconds(), 0.001)
        per_second = done / seconds
        rate, left = round(per_second), int(max(total - done, 0) / per_second)
    return Progress(done, total, percent, rate, left)
