"""The active people, with their department and role, held by each process and reloaded
after one changes.

A manager's or the admin's list, board and report pages offer the people in their scope
as owner and assignee choices (`crm.filters.people_in_scope`); loading them was a query
and a few milliseconds of a worker's CPU on every such request (51 people in the bench
organisation). They change far less often than they are read. The scope itself (which
departments) is still the user's own (`accounts.access.scope_department_ids`); only the
rows come from the copy. The same scheme as the data-dictionary items
(crm.dictionary_copy).

Invalidation: saving or deleting a person, a department or a role sets a new version, at
once and again after the commit; a sign-in (which saves only `last_login`) does not. A
change that sends no signal (a bulk update, SQL by hand) is seen within COPY_SECONDS.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Department, Role, User

from .process_copy import ProcessCopy

VERSION_KEY = "crm:people:version"
COPY_SECONDS = 60


def _load() -> tuple[User, ...]:
    return tuple(
        User.objects.filter(is_active=True)
        .select_related("department", "role")
        .order_by("name", "username")
    )


_people = ProcessCopy(VERSION_KEY, _load, seconds=COPY_SECONDS)


def active_people() -> tuple[User, ...]:
    """Every active person with department and role, ordered by name then user name.

    Shared by the process's requests: read them, never change them."""
    return _people.get()


@receiver([post_save, post_delete], sender=User)
@receiver([post_save, post_delete], sender=Department)
@receiver([post_save, post_delete], sender=Role)
def _forget_on_change(sender, update_fields=None, **kwargs) -> None:
    if sender is User and update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    forget_people()
    transaction.on_commit(forget_people)


def forget_people() -> None:
    """Every process reloads the people on its next read."""
    _people.forget()
