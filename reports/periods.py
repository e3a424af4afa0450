"""The period a report covers: this week / month / quarter, last month, or custom dates.
Bounds are dates in the site's time zone; `start`/`end` give aware datetimes (end
exclusive), so "this month" means the same on PostgreSQL and SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

CHOICES = [
    ("week", _("This week")),
    ("month", _("This month")),
    ("last_month", _("Last month")),
    ("quarter", _("This quarter")),
    ("year", _("This year")),
    ("custom", _("Custom dates")),
]
DEFAULT = "month"


def _month_start(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    key: str
    first: date  # the first day in the period
    last: date  # the last day in the period (inclusive)

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first, time.min))

    @property
    def end(self) -> datetime:
        """The moment after the period (exclusive bound)."""
        return timezone.make_aware(datetime.combine(self.last + timedelta(days=1), time.min))

    @property
    def name(self) -> str:
        """What the period select calls it ("This month")."""
        return str(dict(CHOICES).get(self.key, self.key))

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m-%d} – {self.last:%Y-%m-%d}"

    def list_params(self, prefix: str) -> dict[str, str]:
        """The period as a list's django-filter date range (`<prefix>_after/_before`)."""
        return {
            f"{prefix}_after": self.first.isoformat(),
            f"{prefix}_before": self.last.isoformat(),
        }


def period_for(key: str, *, today: date | None = None, first=None, last=None) -> Period:
    today = today or timezone.localdate()
    if key == "week":
        start = today - timedelta(days=today.weekday())
        return Period(key, start, start + timedelta(days=6))
    if key == "last_month":
        start = _month_start(today, -1)
        return Period(key, start, _month_start(today) - timedelta(days=1))
    if key == "quarter":
        start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return Period(key, start, _month_start(start, 3) - timedelta(days=1))
    if key == "year":
        return Period(key, date(today.year, 1, 1), date(today.year, 12, 31))
    if key == "custom" and first and last and first <= last:
        return Period(key, first, last)
    start = _month_start(today)
    return Period("month", start, _month_start(today, 1) - timedelta(days=1))
