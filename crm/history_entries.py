"""Change rows as the history sections show them, for every app's record pages.

The customer page's History tab and the lead and deal pages read the same rows
(`crm.models.Change`) and show them alike: the action in words, the field labels in the
reader's language, and never a field hidden from the reader's role. This module is part of
crm's public surface (ARCHITECTURE.md), so a page of a higher app need not copy it from a
view or reach into a view's private helper.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import pgettext_lazy

from accounts import access
from accounts.models import User

from .models import Change, ChangeAction, Contact, Customer
from .services.history import field_label

# How the history reads each action ("王芳 changed", "李娜 claimed it from the pool").
HISTORY_ACTIONS = {
    ChangeAction.CREATED: pgettext_lazy("history", "created"),
    ChangeAction.UPDATED: pgettext_lazy("history", "changed"),
    ChangeAction.TRANSFERRED: pgettext_lazy("history", "transferred"),
    ChangeAction.CLAIMED: pgettext_lazy("history", "claimed it from the public pool"),
    ChangeAction.RELEASED: pgettext_lazy("history", "returned it to the public pool"),
    ChangeAction.TAGGED: pgettext_lazy("history", "tagged"),
    ChangeAction.MERGED: pgettext_lazy("history", "merged a duplicate into it"),
}


def history_field_name(key: str) -> str:
    """A history key as field permissions name it ("custom.revenue" -> "cf_revenue")."""
    return f"cf_{key.removeprefix('custom.')}" if key.startswith("custom.") else key


def history_entries(
    changes: Sequence[Change], user: User, *, subject: type[models.Model] = Customer
) -> list[dict]:
    """Change rows as the page shows them: field labels in the reader's language, and
    for a change about another record than the page's `subject` type what it was about
    (a contact's change names the contact; one query for the whole page). Fields hidden
    from the reader's role are left out (an edit of only those, entirely)."""
    contact_type = ContentType.objects.get_for_model(Contact)
    contact_ids = {c.record_id for c in changes if c.record_type_id == contact_type.pk}
    contact_names = (
        dict(Contact.objects.filter(pk__in=contact_ids).values_list("pk", "name"))
        if contact_ids
        else {}
    )
    entries = []
    for change in changes:
        model = ContentType.objects.get_for_id(change.record_type_id).model_class()
        about = ""
        if model is not None and model is not subject:
            about = model._meta.verbose_name
            if model is Contact and change.record_id in contact_names:
                about = f"{about} {contact_names[change.record_id]}"
        hidden = access.hidden_fields(user, getattr(model, "record_type", ""))
        items = [
            item
            for item in change.changes
            if history_field_name(item.get("field", "")) not in hidden
        ]
        if change.changes and not items:
            continue
        entries.append(
            {
                "change": change,
                "action": HISTORY_ACTIONS.get(change.action, change.get_action_display()),
                "about": about,
                "fields": [
                    {
                        "label": field_label(model, item.get("field", "")) if model else "",
                        "old": item.get("old", ""),
                        "new": item.get("new", ""),
                    }
                    for item in items
                ],
            }
        )
    return entries
