"""Web-to-lead forms (issue 18): a form an admin designs, embedded on the company's site,
whose submissions become leads through pipelines.services — and the log of every
submission (what came, from where, and what it made)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import dictionary_field
from pipelines.models import Pipeline, PipelineKind, Stage, StageKind

from . import catalogue

USER = settings.AUTH_USER_MODEL


def new_key() -> str:
    """32 URL-safe characters from 24 random bytes: unguessable, fit for a public URL."""
    return secrets.token_urlsafe(24)


def parse_origins(text: str) -> list[str]:
    """The allowed origins, one per line (or separated by spaces or commas), each as
    scheme://host[:port]; a ValidationError naming the first that is not one."""
    origins = []
    for raw in text.replace(",", " ").split():
        parts = urlsplit(raw.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ValidationError(
                _("“%(value)s” is not an origin: write it as https://www.example.com."),
                params={"value": raw[:80]},
            )
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in origins:
            origins.append(origin)
    return origins


class Assignment(models.TextChoices):
    POOL = "pool", _("Nobody: the lead pool")
    USER = "user", _("A fixed person")
    ROUND_ROBIN = "round_robin", _("In turn among a department's members")


class WebForm(models.Model):
    name = models.CharField(_("name"), max_length=100)
    title = models.CharField(
        _("heading"), max_length=200, blank=True, help_text=_("Shown above the fields.")
    )
    intro = models.TextField(_("introduction"), blank=True)
    key = models.CharField(
        _("public key"),
        max_length=64,
        unique=True,
        default=new_key,
        editable=False,
        help_text=_("Part of the form's public address; regenerate it to retire old copies."),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("An inactive form answers “not found”.")
    )
    pipeline = models.ForeignKey(
        Pipeline,
        verbose_name=_("pipeline"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": PipelineKind.LEAD},
        help_text=_("Empty: the default lead pipeline."),
    )
    stage = models.ForeignKey(
        Stage,
        verbose_name=_("stage"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"pipeline__kind": PipelineKind.LEAD, "kind": StageKind.OPEN},
        help_text=_("Empty: the pipeline's first open stage."),
    )
    source = dictionary_field("lead_source", _("lead source"))
    assignment = models.CharField(
        _("owner of new leads"),
        max_length=20,
        choices=Assignment.choices,
        default=Assignment.POOL,
    )
    owner = models.ForeignKey(
        USER,
        verbose_name=_("person"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("With “A fixed person”."),
    )
    department = models.ForeignKey(
        "accounts.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("With “In turn”: its active members who may change leads, in turn."),
    )
    # Round robin: the member who got the last lead (the next one goes to the one after).
    last_assigned = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    thank_you = models.TextField(
        _("thank-you message"),
        blank=True,
        help_text=_("Shown after a submission; empty: a short thank-you."),
    )
    redirect_url = models.CharField(
        _("redirect to"),
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("Instead of the thank-you message: an http(s) address to go to."),
    )
    allowed_origins = models.TextField(
        _("allowed origins"),
        blank=True,
        help_text=_(
            "Sites that may send this form, one per line (https://www.example.com). "
            "Empty: any site."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("web form")
        verbose_name_plural = _("web forms")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        try:
            return parse_origins(self.allowed_origins)
        except ValidationError:
            return []

    def regenerate_key(self) -> None:
        self.key = new_key()
        self.save(update_fields=["key", "updated_at"])

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.pipeline_id and self.pipeline.kind != PipelineKind.LEAD:
            errors["pipeline"] = _("Choose a lead pipeline.")
        if self.stage_id:
            if self.stage.kind != StageKind.OPEN:
                errors["stage"] = _("A new lead starts in an open stage.")
            elif self.pipeline_id and self.stage.pipeline_id != self.pipeline_id:
                errors["stage"] = _("Choose a stage of the chosen pipeline.")
            elif self.stage.pipeline.kind != PipelineKind.LEAD:
                errors["stage"] = _("Choose a stage of a lead pipeline.")
        if self.assignment == Assignment.USER and not self.owner_id:
            errors["owner"] = _("Choose the person new leads go to.")
        if self.assignment == Assignment.ROUND_ROBIN and not self.department_id:
            errors["department"] = _("Choose the department whose members take turns.")
        if self.source_id and self.source.dictionary.code != "lead_source":
            errors["source"] = _("Choose a lead source.")
        try:
            parse_origins(self.allowed_origins)
        except ValidationError as exc:
            errors["allowed_origins"] = exc.messages[0]
        if errors:
            raise ValidationError(errors)
        if self.assignment != Assignment.USER:
            self.owner = None
        if self.assignment != Assignment.ROUND_ROBIN:
            self.department = None

    def starting_stage(self) -> Stage | None:
        """Where its leads start: the chosen stage, else the pipeline's (or the default
        lead pipeline's) first open stage."""
        if self.stage_id:
            return self.stage
        pipeline = self.pipeline
        if pipeline is None:
            pipeline = (
                Pipeline.objects.active().for_leads().order_by("-is_default", "order", "id").first()
            )
        return pipeline.first_open_stage() if pipeline else None


class WebFormField(models.Model):
    """One field of a form: a lead's standard field or a lead custom field ("cf_<key>"),
    with the label the visitor sees, whether it must be filled, and its place."""

    form = models.ForeignKey(WebForm, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(_("field"), max_length=64)
    label = models.CharField(
        _("label"), max_length=100, blank=True, help_text=_("Empty: the field's own name.")
    )
    required = models.BooleanField(_("required"), default=False)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("field")
        verbose_name_plural = _("fields")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["form", "name"], name="webform_field_once"),
        ]

    def __str__(self) -> str:
        return self.display_label

    @property
    def display_label(self) -> str:
        return self.label or catalogue.label_of(self.name)

    def clean(self) -> None:
        if self.name not in catalogue.field_names():
            raise ValidationError({"name": _("Choose one of the lead's fields.")})


class Outcome(models.TextChoices):
    CREATED = "created", _("Lead created")
    DUPLICATE = "duplicate", _("Follow-up on an existing lead")
    REPEAT = "repeat", _("Sent twice (ignored)")
    SPAM = "spam", _("Spam (ignored)")


class WebFormSubmission(models.Model):
    """A submission that was accepted (or silently dropped as spam): what came, from where,
    and the lead it made or followed up. Refused ones (errors, too fast) leave no row."""

    form = models.ForeignKey(
        WebForm,
        verbose_name=_("web form"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="submissions",
    )
    form_name = models.CharField(_("form name"), max_length=100)
    lead = models.ForeignKey(
        "pipelines.Lead",
        verbose_name=_("lead"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    # The token's random part: the same token sent twice makes one lead.
    nonce = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    referrer = models.CharField(_("referrer"), max_length=1000, blank=True)
    page = models.CharField(_("page"), max_length=1000, blank=True)
    utm = models.JSONField(_("UTM parameters"), default=dict, blank=True)
    payload = models.JSONField(_("submitted values"), default=dict, blank=True)
    created_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("web form submission")
        verbose_name_plural = _("web form submissions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["form", "nonce"],
                condition=~models.Q(nonce=""),
                name="webform_submission_token_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.form_name} {self.created_at:%Y-%m-%d %H:%M}"
