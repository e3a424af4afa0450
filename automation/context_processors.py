"""The header's bell: the signed-in person's unread notifications, counted when a page
shows the bell (one COUNT on the partial index `notification_unread`), not for the
partials an htmx request renders."""

from __future__ import annotations

from django.utils.functional import cached_property

from .notifications import unread_count

# Past this the badge says "99+".
BADGE_MAX = 99


class Bell:
    def __init__(self, user):
        self.user = user

    @cached_property
    def count(self) -> int:
        return unread_count(self.user)

    @property
    def label(self) -> str:
        return f"{BADGE_MAX}+" if self.count > BADGE_MAX else str(self.count)


def notifications(request) -> dict:
    """Context processor: `notification_bell` for a signed-in person, nothing otherwise."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"notification_bell": Bell(user)}
