"""The sales process (DESIGN "The sales process it models"): pipelines of stages, leads
moving through the lead pipeline, deals through deal pipelines, and the history of every
stage move. Stages are assigned only by pipelines.services (DESIGN rule 3)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.dates import check_constraint, validate_date_range
from crm.models import (
    Contact,
    Customer,
    RecordQuerySet,
    dictionary_field,
    localized,
    validate_phone_field,
)

USER = settings.AUTH_USER_MODEL


class PipelineKind(models.TextChoices):
    LEAD = "lead", _("Leads")
    DEAL = "deal", _("Deals")


class PipelineQuerySet(models.QuerySet):
    def active(self) -> PipelineQuerySet:
        return self.filter(is_active=True)

    def for_leads(self) -> PipelineQuerySet:
        return self.filter(kind=PipelineKind.LEAD)

    def for_deals(self) -> PipelineQuerySet:
        return self.filter(kind=PipelineKind.DEAL)


class Pipeline(models.Model):
    kind = models.CharField(_("for"), max_length=10, choices=PipelineKind.choices)
    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    is_default = models.BooleanField(_("default"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    objects = PipelineQuerySet.as_manager()

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["kind", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(is_default=True),
                name="pipeline_one_default_per_kind",
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return localized(self.name, self.name_en)

    def first_open_stage(self) -> Stage | None:
        return self.stages.filter(kind=StageKind.OPEN).order_by("order", "id").first()


class StageKind(models.TextChoices):
    # 进行中, the word the app uses for open stages, leads and deals (a task is 未完成).
    OPEN = "open", pgettext_lazy("pipeline", "Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Stage(models.Model):
    pipeline = models.ForeignKey(
        Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="stages"
    )
    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    kind = models.CharField(_("kind"), max_length=10, choices=StageKind.choices, default="open")
    probability = models.PositiveSmallIntegerField(
        _("win probability (%)"),
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    color = models.CharField(_("colour"), max_length=20, blank=True, default="blue")
    guide = models.TextField(
        _("guide (Chinese)"), blank=True, help_text=_("What the rep should do at this stage.")
    )
    guide_en = models.TextField(_("guide (English)"), blank=True)
    time_limit_days = models.PositiveIntegerField(
        _("time limit (days)"),
        null=True,
        blank=True,
        help_text=_("Days a record may stay in this stage before it is marked overdue."),
    )
    # Field names (standard, or "cf_<key>" for custom fields) a record must have filled
    # before it may enter this stage.
    required_fields = models.JSONField(_("required fields"), default=list, blank=True)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "order", "id"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return localized(self.name, self.name_en)

    @property
    def display_guide(self) -> str:
        return localized(self.guide, self.guide_en)

    @property
    def is_closed(self) -> bool:
        return self.kind != StageKind.OPEN

    def clean(self) -> None:
        if self.kind == StageKind.WON and self.probability != 100:
            self.probability = 100
        if self.kind == StageKind.LOST and self.probability != 0:
            self.probability = 0
        if not isinstance(self.required_fields, list) or not all(
            isinstance(name, str) for name in self.required_fields
        ):
            raise ValidationError({"required_fields": _("A list of field names.")})


class LeadStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("pipeline", "Open")
    CONVERTED = "converted", _("Converted")
    # A lead is lost (丢失), a deal is lost to a competitor or a budget (输单).
    LOST = "lost", pgettext_lazy("lead", "Lost")


# The lost reason as each record type's screens name it.
LOST_REASON = {"lead": pgettext_lazy("lead", "Lost reason"), "deal": _("Lost reason")}
LOST_REASON_REQUIRED = {
    "lead": pgettext_lazy("lead", "Say why: choose a lost reason."),
    "deal": _("Say why: choose a lost reason."),
}


class DealStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("pipeline", "Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class StagedRecord(models.Model):
    """What leads and deals share: a pipeline, a stage and when it was entered."""

    pipeline = models.ForeignKey(
        Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT, related_name="+"
    )
    stage = models.ForeignKey(
        Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="+"
    )
    stage_entered_at = models.DateTimeField(_("in this stage since"), default=timezone.now)
    lost_reason = dictionary_field("lost_reason", _("lost reason"))
    lost_note = models.CharField(_("lost note"), max_length=300, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
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

    class Meta:
        abstract = True

    @property
    def days_in_stage(self) -> int:
        return max(0, (timezone.now() - self.stage_entered_at).days)

    @property
    def over_time_limit(self) -> bool:
        limit = self.stage.time_limit_days
        return bool(limit) and self.stage.kind == StageKind.OPEN and self.days_in_stage > limit


class Lead(StagedRecord):
    """Someone who showed interest (线索); we may know only a phone number."""

    person_name = models.CharField(_("name"), max_length=100, blank=True)
    company_name = models.CharField(_("company"), max_length=200, blank=True)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    wechat = models.CharField(_("WeChat"), max_length=100, blank=True)
    source = dictionary_field("lead_source", _("source"))
    notes = models.TextField(_("notes"), blank=True)
    lost_reason = dictionary_field("lost_reason", pgettext_lazy("lead", "lost reason"))
    owner = models.ForeignKey(
        USER,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        help_text=_("Empty: not assigned yet; everyone who may see leads sees it."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=LeadStatus.choices, default=LeadStatus.OPEN
    )
    converted_customer = models.ForeignKey(
        Customer,
        verbose_name=_("converted to customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
    )
    converted_contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    converted_deal = models.ForeignKey(
        "Deal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="lead_owner_created"),
            # The lead list: open leads, newest first. Its page and capped count read the
            # open ones from it rather than every lead (a manager's count 12.2 -> 7.3 ms).
            models.Index(fields=["status", "-created_at", "-id"], name="lead_status_created"),
            # A board column's first cards, newest first (BoardQuery.ordering): read in
            # order and stopped after a column's worth, not every lead of the stage sorted.
            models.Index(fields=["stage", "status", "-created_at", "-id"], name="lead_stage"),
            # A closed column's latest (converted, lost): the month's, not every one since
            # the start sorted (23,000 converted leads read for 20 cards).
            models.Index(fields=["stage", "-closed_at"], name="lead_stage_closed"),
            # The board's totals read only this index (PostgreSQL: an index-only scan).
            models.Index(
                fields=["pipeline", "stage"],
                include=["owner", "closed_at"],
                name="lead_board_totals",
            ),
            models.Index(fields=["phone"], name="lead_phone"),
            models.Index(Upper("email"), name="lead_email_upper"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        parts = [p for p in (self.company_name, self.person_name) if p]
        return " · ".join(parts) or self.phone or self.email or f"#{self.pk}"

    def clean(self) -> None:
        validate_phone_field(self, "phone")
        if not any((self.person_name, self.company_name, self.phone, self.email, self.wechat)):
            raise ValidationError(
                _("Give at least a name, a company, a phone number, an email or a WeChat id.")
            )


class Deal(StagedRecord):
    """A sale in progress with a customer (商机)."""

    title = models.CharField(_("title"), max_length=200)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="deals"
    )
    contact = models.ForeignKey(
        Contact,
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deals",
    )
    amount = models.DecimalField(
        _("amount (CNY)"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    expected_close_date = models.DateField(
        _("expected close date"), null=True, blank=True, validators=[validate_date_range]
    )
    probability = models.PositiveSmallIntegerField(_("probability (%)"), default=0)
    status = models.CharField(
        _("status"), max_length=10, choices=DealStatus.choices, default=DealStatus.OPEN
    )
    owner = models.ForeignKey(
        USER, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="deals"
    )

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="deal_owner_created"),
            models.Index(fields=["stage", "status", "-amount"], name="deal_board"),
            models.Index(fields=["pipeline", "status"], name="deal_pipeline"),
            # The board's totals (count, amount, weighted amount per stage) read only this
            # index on PostgreSQL: an index-only scan, not 25,000 rows from the table.
            models.Index(
                fields=["pipeline", "stage"],
                include=["owner", "amount", "probability", "closed_at"],
                name="deal_board_totals",
            ),
            # A rep's board (scope own): each column's first cards in order and, with the
            # columns it includes, the totals from this index alone. Through the two
            # above a rep's board read all 25,000 deals of the pipeline for the totals
            # and intersected owner and stage bitmaps for each column (bench, 496 deals
            # of the rep: totals 5.8 -> 0.7 ms, cards 8.0 -> 1.8 ms).
            models.Index(
                fields=["owner", "stage", "status", "-amount", "-id"],
                include=["pipeline", "probability", "closed_at"],
                name="deal_owner_board",
            ),
            models.Index(fields=["customer"], name="deal_customer_idx"),
            # The home page's "closing soon" (pipelines/dashboard.py): a rep's open deals
            # by expected close, read in order (it read all 55,000 deals in parallel).
            models.Index(
                fields=["owner", "status", "expected_close_date", "id"], name="deal_owner_closing"
            ),
            # Reports of closed deals (win rate, funnel drop-off) read them by close time.
            models.Index(fields=["closed_at", "status"], name="deal_closed"),
        ]
        constraints = [
            check_constraint("expected_close_date", is_date=True, name="deal_expected_close_range")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount * self.probability / 100).quantize(Decimal("0.01"))

    def clean(self) -> None:
        if self.contact_id and self.customer_id and self.contact.customer_id != self.customer_id:
            raise ValidationError({"contact": _("The contact must belong to the deal's customer.")})


class StageHistory(models.Model):
    """One stage move: from, to, who, when, and how long the record spent where it was."""

    record_type = models.CharField(_("record type"), max_length=10)  # "lead" or "deal"
    record_id = models.PositiveBigIntegerField()
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    from_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        USER, verbose_name=_("by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved_at = models.DateTimeField(_("when"), default=timezone.now)
    seconds_in_previous = models.PositiveBigIntegerField(_("time in the previous stage"), default=0)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("stage move")
        verbose_name_plural = _("stage history")
        ordering = ["moved_at", "id"]
        indexes = [
            models.Index(
                fields=["record_type", "record_id", "moved_at"], name="stagehistory_record"
            ),
            models.Index(fields=["to_stage", "moved_at"], name="stagehistory_to_stage"),
            # The funnel report reads a period's moves into a pipeline's stages and out of
            # them from these alone (index-only scans on PostgreSQL), not the table.
            models.Index(
                fields=["pipeline", "moved_at"],
                include=["record_type", "record_id", "to_stage"],
                name="stagehistory_pipeline",
            ),
            models.Index(
                fields=["from_stage", "moved_at"],
                include=["record_type", "record_id", "seconds_in_previous"],
                name="stagehistory_from_stage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_type}#{self.record_id}: {self.from_stage} → {self.to_stage}"
