"""Every data-dictionary item, held by each process and reloaded after one changes.

Lists, record pages, filters and the API read the items on every request (a list's
level / type / source columns, its filter pickers, a follow-up's kind); they change a
few times a year, in Django admin. Loading them (~80 rows with their dictionaries) was a
query and ~1.6 ms of a worker's CPU per request; the copy costs one read of a small
version key in the shared cache. The same scheme as the custom field definitions
(crm.fields.schema.all_custom_fields).

Invalidation: saving or deleting an item or a dictionary sets a new version, at once
and again after the commit, so every process reloads on its next request. A change that
sends no signal (a data migration, SQL by hand) is seen within COPY_SECONDS.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Dictionary, DictionaryItem
from .process_copy import ProcessCopy

VERSION_KEY = "crm:dictionary-items:version"
# The most a process keeps its copy without a change it was told about: the bound for
# changes that send no signal, and for every change without a shared cache (`make run`
# without Redis: each process its own cache).
COPY_SECONDS = 60


def _load() -> dict[int, DictionaryItem]:
    return {
        item.pk: item
        for item in DictionaryItem.objects.select_related("dictionary").order_by("order", "id")
    }


_items = ProcessCopy(VERSION_KEY, _load, seconds=COPY_SECONDS)


def dictionary_items_by_id() -> dict[int, DictionaryItem]:
    """Every item (active or not) by id, with its dictionary, in ("order", "id") order.

    The dict and its items are shared by the process's requests: read them, never change
    them (a page sets an item on its rows as their related object; that is reading)."""
    return _items.get()


@receiver([post_save, post_delete], sender=DictionaryItem)
@receiver([post_save, post_delete], sender=Dictionary)
def _forget_on_change(**kwargs) -> None:
    # Now for this transaction's own reads, and again once committed: a request of
    # another process in between may have loaded the items as they were before.
    forget_dictionary_items()
    transaction.on_commit(forget_dictionary_items)


def forget_dictionary_items() -> None:
    """Every process reloads the items on its next read."""
    _items.forget()
