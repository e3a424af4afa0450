"""Deleting one record, for a person (the REST API's DELETE), without losing what hangs
off it.

Only a record nothing else points at is deleted: a customer with contacts, follow-ups,
tasks, deals or leads, a contact a deal or a follow-up names, are refused with what is
attached, so nothing a user entered goes with it unnoticed (DESIGN rule 8). What is the
record's own trail goes with it: its tags' links, a customer's pool history and history
rows. The "deleted" event (who, when) is written first, in the same transaction, and
kept: history shows it, and webhooks and rules hear of it.

Who may delete is the caller's business (`Model.objects.deletable_by(user)`, the role's
`<type>.delete`); the record's type is any registered one.
"""

from __future__ import annotations

from collections import Counter

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.utils.text import get_text_list
from django.utils.translation import gettext, ngettext

from ..models import Activity, Change, EventReceipt, PoolEvent, Task
from .history import record_deletions

# Rows that belong to the record and go with it.
OWN_TRAIL = (Change, EventReceipt, PoolEvent)


def attached(record: models.Model) -> Counter:
    """What deleting `record` would also delete or is kept from deleting by, by model
    (its own trail and many-to-many links left out)."""
    collector = Collector(using=router.db_for_write(type(record)))
    found: Counter = Counter()
    try:
        collector.collect([record])
    except ProtectedError as exc:
        for obj in exc.protected_objects:
            found[type(obj)] += 1
    except RestrictedError as exc:
        for obj in exc.restricted_objects:
            found[type(obj)] += 1
    for model, instances in collector.data.items():
        if model is type(record) or model in OWN_TRAIL or model._meta.auto_created:
            continue
        found[model] += len(instances)
    for qs in collector.fast_deletes:
        model = qs.model
        if model is type(record) or model in OWN_TRAIL or model._meta.auto_created:
            continue
        count = qs.count()
        if count:
            found[model] += count
    # Follow-ups and tasks point at what they are about generically (a lead's): no foreign
    # key the collector would see. A customer's are its own by foreign key too: the larger
    # of the two counts, not their sum.
    content_type = ContentType.objects.get_for_model(type(record))
    for model in (Activity, Task):
        count = model.objects.filter(subject_type=content_type, subject_id=record.pk).count()
        if count > found[model]:
            found[model] = count
    return found


def describe(found: Counter) -> str:
    parts = [
        ngettext("%(count)d %(thing)s", "%(count)d %(things)s", n)
        % {
            "count": n,
            "thing": model._meta.verbose_name,
            "things": model._meta.verbose_name_plural,
        }
        for model, n in sorted(found.items(), key=lambda item: item[0]._meta.label)
    ]
    return get_text_list(parts, gettext("and"))


def delete_record(record: models.Model, *, by) -> None:
    """Delete `record` with its "deleted" event, or raise ValidationError naming what is
    attached to it (nothing changes then)."""
    with transaction.atomic():
        locked = type(record).objects.select_for_update().filter(pk=record.pk).first()
        if locked is None:
            return  # deleted meanwhile: what the caller wanted
        found = attached(locked)
        if found:
            raise ValidationError(
                gettext(
                    "%(record)s cannot be deleted: %(attached)s still belong to it. Delete "
                    "or move them first."
                )
                % {"record": locked, "attached": describe(found)},
                code="attached",
            )
        record_deletions([locked], by=by)
        locked.delete()
