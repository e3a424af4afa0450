"""Record models that exist only in tests, to prove the access rules before real
record models (customers, deals, ...) land on them."""

from django.conf import settings
from django.db import models

from accounts import access


class OwnedRecord(models.Model):
    title = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )

    objects = access.ScopedQuerySet.as_manager()

    class Meta:
        abstract = True
        app_label = "testapp"

    def __str__(self) -> str:
        return self.title


@access.register("note")
class Note(OwnedRecord):
    class Meta:
        app_label = "testapp"
        verbose_name = "note"
        verbose_name_plural = "notes"


@access.register("pooled", pool=True)
class PooledNote(OwnedRecord):
    """Like a customer: unowned rows are a public pool everyone may see."""

    class Meta:
        app_label = "testapp"


class HandledEvent(models.Model):
    """What the test subscriber (tests/testapp/subscriber.py) did with an event: one row
    per handling, so a test sees an event handled twice."""

    event_id = models.BigIntegerField()
    kind = models.CharField(max_length=30)
    fields = models.JSONField(default=dict)
    pid = models.IntegerField()

    class Meta:
        app_label = "testapp"

    def __str__(self) -> str:
        return f"{self.kind} #{self.event_id}"
