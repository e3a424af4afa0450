"""The rules of crm's record types beyond each field's type, in one place.

A form, a service, an import, the API and an automation "set field" action must refuse
the same values with the same words. Field types and ranges live on the model fields
(validators, crm/dates.py); the rules that span fields or read the clock live here, and
each model's `clean()` calls them, so `full_clean()` — which every service runs before it
saves — applies them whatever the caller. A form that is not a ModelForm (the follow-up
form) calls the same function. Rules of other apps' record types live on their models
(pipelines: a lead needs some way to reach it, a deal's contact is its customer's).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

TAG_MAX = 50
# How people separate several tags typed in one box (or one spreadsheet cell).
TAG_SEPARATORS = re.compile(r"[,，、;；]+")
ACTIVITY_CONTENT_MAX = 5000
# A follow-up "that happened" may be logged a few minutes ahead of a slow clock.
FUTURE_TOLERANCE = timedelta(minutes=5)

CUSTOMER_NAME_REQUIRED = gettext_lazy("Enter the customer's name.")
CONTACT_NAME_REQUIRED = gettext_lazy("Enter the contact's name.")
ACTIVITY_CONTENT_REQUIRED = gettext_lazy("Write what happened.")


def required_name(value: str | None, field: str, message) -> str:
    """A name with its surrounding spaces dropped; blank (or only spaces) is refused."""
    name = (value or "").strip()
    if not name:
        raise ValidationError({field: [str(message)]}, code="required")
    return name


def validate_tag_name(name: str) -> str:
    """A tag name as stored: trimmed, not empty, never cut short."""
    name = name.strip()
    if len(name) > TAG_MAX:
        raise ValidationError(
            _("“%(name)s” is too long for a tag (%(limit)s characters at most).")
            % {"name": name, "limit": TAG_MAX},
            code="max_length",
        )
    return name


def tag_names(text: str) -> list[str]:
    """Tag names typed in one box or cell ("华东, 年度大单"), in order, once each."""
    names: list[str] = []
    for part in TAG_SEPARATORS.split(text or ""):
        name = validate_tag_name(part)
        if name and name not in names:
            names.append(name)
    return names


def check_activity_times(
    occurred_at: datetime | None, next_follow_up_at: datetime | None, *, now=None
) -> None:
    """A follow-up that happened is not in the future, and the next one it plans comes
    after it. Errors are keyed by field."""
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    if occurred_at and occurred_at > now + FUTURE_TOLERANCE:
        errors["occurred_at"] = [_("A follow-up that has happened cannot be in the future.")]
    if occurred_at and next_follow_up_at and next_follow_up_at <= occurred_at:
        errors["next_follow_up_at"] = [_("The next follow-up must be later than this one.")]
    if errors:
        raise ValidationError(errors)
