"""The core records: customers, contacts, activities, tasks, tags, saved views,
data dictionaries and the change history."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts import access, actors
from accounts.phones import normalize_phone

from . import validation
from .dates import check_constraint, validate_date_range

USER = settings.AUTH_USER_MODEL


def localized(zh: str, en: str) -> str:
    """A configured text (labels, names, guides) in the reader's language: the English
    one when the UI is not Chinese and an English text was given."""
    return en if en and not (get_language() or "").startswith("zh") else zh


# --- Data dictionaries ----------------------------------------------------------------


class Dictionary(models.Model):
    """A picklist admins maintain, e.g. customer source. `code` never changes."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("data dictionary")
        verbose_name_plural = _("data dictionaries")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class DictionaryItemQuerySet(models.QuerySet):
    def of(self, code: str) -> DictionaryItemQuerySet:
        return self.filter(dictionary__code=code)

    def active(self) -> DictionaryItemQuerySet:
        return self.filter(is_active=True)


class DictionaryItem(models.Model):
    """One choice of a dictionary. Used items are deactivated, never deleted."""

    dictionary = models.ForeignKey(
        Dictionary, verbose_name=_("dictionary"), on_delete=models.PROTECT, related_name="items"
    )
    code = models.SlugField(_("code"), max_length=50)
    label = models.CharField(_("label (Chinese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    color = models.CharField(_("colour"), max_length=20, blank=True)
    is_default = models.BooleanField(_("default"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    objects = DictionaryItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("dictionary item")
        verbose_name_plural = _("dictionary items")
        ordering = ["dictionary", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dictionary", "code"], name="dictionaryitem_unique_code"
            )
        ]

    def __str__(self) -> str:
        return localized(self.label, self.label_en)


def dictionary_field(code: str, verbose_name, **kwargs) -> models.ForeignKey:
    """A reference to an item of the dictionary `code`."""
    return models.ForeignKey(
        DictionaryItem,
        verbose_name=verbose_name,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"dictionary__code": code},
        **kwargs,
    )


# --- Tags -----------------------------------------------------------------------------


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=validation.TAG_MAX, unique=True)
    color = models.CharField(_("colour"), max_length=20, blank=True, default="blue")

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --- Customers and contacts -----------------------------------------------------------


class RecordQuerySet(access.ScopedQuerySet):
    pass


def validate_phone_field(instance: models.Model, *fields: str) -> None:
    """Normalise the named phone fields to E.164; errors name the field."""
    errors = {}
    for field in fields:
        try:
            setattr(instance, field, normalize_phone(getattr(instance, field)))
        except ValidationError as exc:
            errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)


class Customer(models.Model):
    """A company or a person we sell to. No owner means it is in the public pool (公海)."""

    name = models.CharField(_("name"), max_length=200)
    owner = models.ForeignKey(
        USER,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
    )
    type = dictionary_field("customer_type", _("type"))
    source = dictionary_field("customer_source", _("source"))
    level = dictionary_field("customer_level", _("level"))
    industry = dictionary_field("industry", _("industry"))
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    website = models.URLField(_("website"), blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")
    custom = models.JSONField(_("custom fields"), default=dict, blank=True)
    created_by = models.ForeignKey(
        USER,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_activity_at = models.DateTimeField(
        _("last activity"), null=True, blank=True, validators=[validate_date_range]
    )
    next_follow_up_at = models.DateTimeField(
        _("next follow-up"), null=True, blank=True, validators=[validate_date_range]
    )
    released_at = models.DateTimeField(_("returned to pool"), null=True, blank=True)

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="customer_owner_created"),
            # A rep's customers as a set of ids (the scope of tasks and follow-ups, which
            # reach their owner through the customer): an index-only range, not a scan
            # of every customer (a key account's timeline at 1M: 54 ms for the set).
            models.Index(fields=["owner", "id"], name="customer_owner_ids"),
            models.Index(fields=["next_follow_up_at"], name="customer_follow_up"),
            models.Index(fields=["last_activity_at"], name="customer_last_activity"),
            models.Index(fields=["phone"], name="customer_phone"),
            models.Index(Upper("email"), name="customer_email_upper"),
        ]
        constraints = [
            check_constraint(
                "last_activity_at", is_date=False, name="customer_last_activity_range"
            ),
            check_constraint("next_follow_up_at", is_date=False, name="customer_follow_up_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = validation.required_name(self.name, "name", validation.CUSTOMER_NAME_REQUIRED)
        validate_phone_field(self, "phone")

    @property
    def in_pool(self) -> bool:
        return self.owner_id is None


class Contact(models.Model):
    """A person at a customer. Who may see it follows the customer."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=100)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    mobile = models.CharField(_("mobile"), max_length=32, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    wechat = models.CharField(_("WeChat"), max_length=100, blank=True)
    birthday = models.DateField(
        _("birthday"), null=True, blank=True, validators=[validate_date_range]
    )
    is_primary = models.BooleanField(_("primary contact"), default=False)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)
    custom = models.JSONField(_("custom fields"), default=dict, blank=True)
    created_by = models.ForeignKey(
        USER,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-is_primary", "name", "id"]
        indexes = [
            # The contact list's default order (by name): its page and capped count walk
            # this index instead of sorting every contact in scope.
            models.Index(fields=["name", "id"], name="contact_name"),
            # Newest first: the list sorted by creation and the API's cursor pages.
            models.Index(fields=["created_at", "id"], name="contact_created"),
            models.Index(fields=["mobile"], name="contact_mobile"),
            models.Index(fields=["phone"], name="contact_phone"),
            models.Index(Upper("email"), name="contact_email_upper"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(is_primary=True),
                name="contact_one_primary_per_customer",
            ),
            check_constraint("birthday", is_date=True, name="contact_birthday_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = validation.required_name(self.name, "name", validation.CONTACT_NAME_REQUIRED)
        validate_phone_field(self, "mobile", "phone")


# --- Activities and tasks -------------------------------------------------------------


# Seen with the customer (its owner's scope, or the pool) or by its author's scope: a
# lead's activities have no customer until the lead is converted.
class Activity(models.Model):
    """A follow-up that happened (跟进记录): a call, a visit, a meeting..."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="activities",
    )
    contact = models.ForeignKey(
        Contact,
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
    )
    kind = dictionary_field("activity_kind", _("kind"))
    content = models.TextField(
        _("content"),
        validators=[MaxLengthValidator(validation.ACTIVITY_CONTENT_MAX)],
        error_messages={"blank": validation.ACTIVITY_CONTENT_REQUIRED},
    )
    occurred_at = models.DateTimeField(
        _("when"), default=timezone.now, validators=[validate_date_range]
    )
    author = models.ForeignKey(
        USER, verbose_name=_("by"), null=True, on_delete=models.SET_NULL, related_name="activities"
    )
    next_follow_up_at = models.DateTimeField(
        _("next follow-up"), null=True, blank=True, validators=[validate_date_range]
    )
    # What it is about beyond the customer: a contact, a lead or a deal.
    subject_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="activity_timeline"),
            models.Index(fields=["author", "-occurred_at"], name="activity_author"),
            # The follow-up list's order: its page and its count (up to the cap) walk it
            # rather than sorting every follow-up in scope (a rep's list: 114,000 at 100k).
            models.Index(fields=["-occurred_at", "-id"], name="activity_time"),
            # A lead's or deal's follow-ups, first contact first (reports, record pages).
            models.Index(
                fields=["subject_type", "subject_id", "occurred_at"], name="activity_subject"
            ),
            # The activity report counts a period's calls, visits and meetings per author
            # and week from this index alone.
            models.Index(
                fields=["kind", "occurred_at"], include=["author"], name="activity_kind_time"
            ),
        ]
        constraints = [
            check_constraint("occurred_at", is_date=False, name="activity_occurred_range"),
            check_constraint("next_follow_up_at", is_date=False, name="activity_follow_up_range"),
        ]

    def __str__(self) -> str:
        return f"{self.kind or ''} {self.occurred_at:%Y-%m-%d}".strip()

    def clean(self) -> None:
        validation.check_activity_times(self.occurred_at, self.next_follow_up_at)


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


def open_first() -> models.Case:
    """0 for an open task, 1 for a done or cancelled one: the task list's first sort key,
    and the first column of the index (task_open_due) that serves that order."""
    return models.Case(
        models.When(status=TaskStatus.OPEN, then=models.Value(0)),
        default=models.Value(1),
        output_field=models.IntegerField(),
    )


class Task(models.Model):
    """Something someone has to do by a time (待办), often a follow-up of a customer."""

    title = models.CharField(_("title"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True, validators=[validate_date_range])
    assignee = models.ForeignKey(
        USER, verbose_name=_("assignee"), on_delete=models.PROTECT, related_name="tasks"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN
    )
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    subject_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    activity = models.ForeignKey(
        Activity,
        verbose_name=_("follow-up of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_up_tasks",
    )
    created_by = models.ForeignKey(
        USER,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["assignee", "status", "due_at"], name="task_assignee_due"),
            models.Index(fields=["customer", "status"], name="task_customer"),
            models.Index(fields=["subject_type", "subject_id"], name="task_subject"),
            # The task list's default order, open tasks first: a manager's page and its
            # count (up to the cap) walk it instead of sorting every task in scope.
            # (PostgreSQL's ascending order puts NULLs last, as the list's due_at.)
            models.Index(
                open_first(),
                models.F("due_at"),
                models.F("id"),
                name="task_open_due",
            ),
        ]
        constraints = [check_constraint("due_at", is_date=False, name="task_due_range")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == TaskStatus.OPEN

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()


# --- Saved views ----------------------------------------------------------------------


class SavedView(models.Model):
    """A named list filter: a person's own, or shared with everyone."""

    name = models.CharField(_("name"), max_length=100)
    record_type = models.CharField(_("record type"), max_length=30)
    owner = models.ForeignKey(
        USER, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="saved_views"
    )
    shared = models.BooleanField(_("shared with everyone"), default=False)
    # The list's query string without paging, e.g. "level=3&sort=-last_activity_at".
    query = models.CharField(_("filters"), max_length=2000, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")
        ordering = ["name"]
        indexes = [models.Index(fields=["record_type", "owner"], name="savedview_owner")]

    def __str__(self) -> str:
        return self.name


# --- History --------------------------------------------------------------------------


class ChangeAction(models.TextChoices):
    # A context apart from field labels: "created" the action, not "created" the date.
    CREATED = "created", pgettext_lazy("history", "created")
    UPDATED = "updated", pgettext_lazy("history", "updated")
    TRANSFERRED = "transferred", pgettext_lazy("history", "transferred")
    CLAIMED = "claimed", pgettext_lazy("history", "claimed from the pool")
    RELEASED = "released", pgettext_lazy("history", "returned to the pool")
    TAGGED = "tagged", pgettext_lazy("history", "tagged")
    MERGED = "merged", pgettext_lazy("history", "merged")
    DELETED = "deleted", pgettext_lazy("history", "deleted")


class EventKind(models.TextChoices):
    """What happened to a record: the `kind` of its event row. Conditions, payloads and
    subscribers use these codes; people read the labels."""

    CREATED = "created", pgettext_lazy("event", "created")
    UPDATED = "updated", pgettext_lazy("event", "updated")
    DELETED = "deleted", pgettext_lazy("event", "deleted")
    TRANSFERRED = "transferred", pgettext_lazy("event", "transferred")
    CLAIMED = "claimed", pgettext_lazy("event", "claimed from the pool")
    RELEASED = "released", pgettext_lazy("event", "returned to the pool")
    TAGGED = "tagged", pgettext_lazy("event", "tagged")
    MERGED = "merged", pgettext_lazy("event", "merged")
    STAGE_MOVED = "stage_moved", pgettext_lazy("event", "moved to another stage")
    PIPELINE_CHANGED = "pipeline_changed", pgettext_lazy("event", "moved to another pipeline")
    CONVERTED = "converted", pgettext_lazy("event", "converted")
    LOST = "lost", pgettext_lazy("event", "lost")
    ACTIVITY_LOGGED = "activity_logged", pgettext_lazy("event", "follow-up logged")
    TASK_COMPLETED = "task_completed", pgettext_lazy("event", "task completed")
    TASK_REOPENED = "task_reopened", pgettext_lazy("event", "task reopened")
    TASK_REASSIGNED = "task_reassigned", pgettext_lazy("event", "task reassigned")


class Change(models.Model):
    """One event of a record (its outbox row) and, the same row, its history entry:
    who or what changed which fields, from what to what.

    `changes` is a list of {"field", "old", "new"} with values as people read them at
    the time, so a later rename of a dictionary item does not rewrite history. `fields`
    holds the same change as raw values ({"owner": [3, 5], "cf_level": ["a", "b"]}: ids,
    codes, ISO dates, decimal strings), for conditions and payloads. `delivered_at` is
    set once every background subscriber has handled the event (crm/events.py).
    """

    record_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    record_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("record_type", "record_id")
    # The customer whose history page shows this row (its own changes and those of its
    # contacts, tasks, deals...); none for events the pages show elsewhere (follow-ups).
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="changes"
    )
    action = models.CharField(_("action"), max_length=20, choices=ChangeAction.choices)
    kind = models.CharField(
        _("event"), max_length=20, choices=EventKind.choices, default=EventKind.UPDATED
    )
    changes = models.JSONField(_("changes"), default=list, blank=True)
    fields = models.JSONField(_("raw values"), default=dict, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    user = models.ForeignKey(
        USER, verbose_name=_("by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A change made by the system rather than by hand: an import, a rule, an API token,
    # the scheduler (accounts/actors.py); blank for a person's own change.
    actor_type = models.CharField(_("made by"), max_length=20, blank=True)
    actor_id = models.PositiveBigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    # How many automation runs led to this change: 0 for a person's (or an import's)
    # change, n for one a rule made while acting on a depth n-1 event; NULL for a quiet
    # change that fires no rules (an import or bulk action the user did not opt in).
    automation_depth = models.PositiveSmallIntegerField(null=True, blank=True, default=0)

    class Meta:
        verbose_name = _("change")
        verbose_name_plural = _("changes")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["record_type", "record_id", "-created_at"], name="change_record"),
            models.Index(fields=["customer", "-created_at"], name="change_customer"),
            # The outbox: what the sweep still has to hand on (a few rows at most).
            models.Index(
                fields=["created_at"],
                name="change_undelivered",
                condition=models.Q(delivered_at__isnull=True),
            ),
            # What one system actor wrote (an import's records, for its undo).
            models.Index(
                fields=["actor_type", "actor_id", "id"],
                name="change_actor",
                condition=~models.Q(actor_type=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def actor_label(self) -> str:
        """The system actor that made the change, in words ("automation rule “报价提醒”");
        blank for a person's own change."""
        if not self.actor_type:
            return ""
        return actors.actor_label(self.actor_type, self.actor_id, self.actor_name)

    @property
    def by_system(self) -> bool:
        """Made by the system on its own (a rule, the scheduler), not for a person."""
        return self.actor_type in actors.SYSTEM_KINDS


class EventReceipt(models.Model):
    """A background subscriber has handled an event: written in the same transaction
    as what the subscriber did, so a retried delivery never handles it twice."""

    event = models.ForeignKey(Change, on_delete=models.CASCADE, related_name="receipts")
    subscriber = models.CharField(max_length=100)
    handled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "subscriber"], name="event_receipt_once")
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} #{self.event_id}"


class PoolEvent(models.Model):
    """A claim from or a return to the public pool: reports count them."""

    class Action(models.TextChoices):
        CLAIM = "claim", pgettext_lazy("pool", "claimed")
        RELEASE = "release", pgettext_lazy("pool", "returned")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="pool_events"
    )
    user = models.ForeignKey(USER, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+")
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("pool event")
        verbose_name_plural = _("pool events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "action", "created_at"], name="poolevent_user")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.customer_id}"


# --- Custom fields (DESIGN rules 4 and 5) ----------------------------------------------


class FieldType(models.TextChoices):
    TEXT = "text", _("Text")
    LONG_TEXT = "long_text", _("Long text")
    INTEGER = "integer", _("Whole number")
    DECIMAL = "decimal", _("Decimal number")
    MONEY = "money", _("Money (CNY)")
    DATE = "date", _("Date")
    DATETIME = "datetime", _("Date and time")
    BOOLEAN = "boolean", _("Yes/no")
    CHOICE = "choice", _("Single choice")
    MULTI_CHOICE = "multi_choice", _("Multiple choice")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    URL = "url", _("URL")
    USER = "user", _("User")


class CustomFieldRecordType(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    CONTACT = "contact", _("Contact")
    LEAD = "lead", _("Lead")
    DEAL = "deal", _("Deal")


CUSTOM_KEY_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_]{0,39}\Z",
    _("Use lower-case letters, digits and _ (start with a letter, at most 40)."),
)


class CustomFieldQuerySet(models.QuerySet):
    def active(self) -> CustomFieldQuerySet:
        return self.filter(is_active=True)

    def of(self, record_type: str) -> CustomFieldQuerySet:
        return self.filter(record_type=record_type)


class CustomField(models.Model):
    """A field an admin adds to a record type; values live in the record's `custom` JSON
    under the immutable key. Validation and storage: crm.fields."""

    record_type = models.CharField(
        _("record type"), max_length=20, choices=CustomFieldRecordType.choices
    )
    key = models.CharField(
        _("key"),
        max_length=40,
        validators=[CUSTOM_KEY_VALIDATOR],
        help_text=_("Stored with every value; cannot be changed once saved."),
    )
    label = models.CharField(_("label (Chinese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100, blank=True)
    field_type = models.CharField(_("type"), max_length=20, choices=FieldType.choices)
    dictionary = models.ForeignKey(
        Dictionary,
        verbose_name=_("dictionary"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="custom_fields",
        help_text=_("The choices of a single- or multiple-choice field."),
    )
    required = models.BooleanField(_("required"), default=False)
    unique = models.BooleanField(
        _("unique"), default=False, help_text=_("No two records may have the same value.")
    )
    max_length = models.PositiveIntegerField(_("max length"), null=True, blank=True)
    min_value = models.DecimalField(
        _("minimum"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    max_value = models.DecimalField(
        _("maximum"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    pattern = models.CharField(
        _("pattern"),
        max_length=300,
        blank=True,
        help_text=_("A regular expression the whole value must match."),
    )
    pattern_message = models.CharField(_("pattern error (Chinese)"), max_length=200, blank=True)
    pattern_message_en = models.CharField(_("pattern error (English)"), max_length=200, blank=True)
    default = models.CharField(
        _("default"),
        max_length=500,
        blank=True,
        help_text=_("Filled in on new records; choices by item code."),
    )
    help_text = models.CharField(_("help text (Chinese)"), max_length=300, blank=True)
    help_text_en = models.CharField(_("help text (English)"), max_length=300, blank=True)
    section = models.CharField(_("section"), max_length=100, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    show_in_list = models.BooleanField(_("shown in lists"), default=False)
    filterable = models.BooleanField(_("filterable"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CustomFieldQuerySet.as_manager()

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["record_type", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["record_type", "key"], name="customfield_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.get_record_type_display()} · {self.display_label}"

    def clean(self) -> None:
        """The definition must make sense before any value is checked against it; the
        checks that need stored data (type change, unique) live in crm.fields."""
        import re

        from .fields import definitions

        errors: dict[str, list] = {}
        if self.pk:
            stored = CustomField.objects.filter(pk=self.pk).values("key", "record_type").first()
            if stored and stored["key"] != self.key:
                errors.setdefault("key", []).append(_("The key cannot be changed once saved."))
            if stored and stored["record_type"] != self.record_type:
                errors.setdefault("record_type", []).append(
                    _("The record type cannot be changed once saved.")
                )
        choice = self.field_type in (FieldType.CHOICE, FieldType.MULTI_CHOICE)
        if choice and not self.dictionary_id:
            errors.setdefault("dictionary", []).append(
                _("A choice field needs a dictionary to choose from.")
            )
        if not choice and self.dictionary_id:
            errors.setdefault("dictionary", []).append(
                _("Only single- and multiple-choice fields use a dictionary.")
            )
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                errors.setdefault("pattern", []).append(
                    _("Not a valid regular expression: %(error)s") % {"error": exc}
                )
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            errors.setdefault("max_value", []).append(
                _("The maximum must not be below the minimum.")
            )
        if errors:
            raise ValidationError(errors)
        if self.field_type in FieldType.values:
            # (An unknown type is already the type field's own error.)
            definitions.check(self)

    @property
    def name(self) -> str:
        """Its name in forms, filters, list columns, saved views and field permissions."""
        return f"cf_{self.key}"

    @property
    def display_label(self) -> str:
        return localized(self.label, self.label_en)

    @property
    def display_help(self) -> str:
        return localized(self.help_text, self.help_text_en)

    @property
    def display_pattern_message(self) -> str:
        return localized(self.pattern_message, self.pattern_message_en)


# --- Configuration log -----------------------------------------------------------------


class ConfigChange(models.Model):
    """Who changed which piece of configuration (a dictionary, a field, a role, later
    pipelines and rules), when, and from what to what."""

    class Action(models.TextChoices):
        CREATE = "create", pgettext_lazy("config", "created")
        UPDATE = "update", pgettext_lazy("config", "changed")
        DELETE = "delete", pgettext_lazy("config", "deleted")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        USER,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=30, blank=True)
    model = models.CharField(_("what"), max_length=60)
    object_id = models.CharField(_("object id"), max_length=40)
    object_repr = models.CharField(_("object"), max_length=200)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    changes = models.JSONField(_("changes"), default=list, blank=True)

    class Meta:
        verbose_name = _("configuration change")
        verbose_name_plural = _("configuration log")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "object_id"], name="configchange_object")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_repr}"
