"""Automation (DESIGN rule 6): rules that act on records by themselves, their runs, the
work they schedule, and the in-app notifications they (and others) send.

A `Rule` says when (a trigger), on what (record type, optionally a pipeline and stage;
conditions) and what to do (ordered `RuleAction`s). Each time a rule fires on a record
there is one `RuleRun` — its log and trace — and the work is done from
`ScheduledAction` rows: one due at once, then one per delay. Each action done is an
`ActionRun` whose unique key makes a retried or duplicated run do it once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Change
from pipelines.models import Pipeline, Stage

USER = settings.AUTH_USER_MODEL


class RecordType(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    CONTACT = "contact", _("Contact")
    LEAD = "lead", _("Lead")
    DEAL = "deal", _("Deal")
    TASK = "task", _("Task")


class Trigger(models.TextChoices):
    CREATED = "created", _("Record created")
    STAGE_ENTERED = "stage_entered", _("Stage entered")
    STAGE_LEFT = "stage_left", _("Stage left")
    FIELD_CHANGED = "field_changed", _("Field changed")
    TIME_IN_STAGE = "time_in_stage", _("Time in stage over a limit")
    NO_ACTIVITY = "no_activity", _("No follow-up for a number of days")
    ANNIVERSARY = "anniversary", _("Anniversary of a date (birthday)")
    SCHEDULE = "schedule", _("On a schedule (daily or weekly)")
    LEAD_CONVERTED = "lead_converted", _("Lead converted")
    DEAL_WON = "deal_won", _("Deal won")
    DEAL_LOST = "deal_lost", _("Deal lost")


# Triggers the periodic scan fires (the rest answer record events).
TIME_TRIGGERS = frozenset(
    {Trigger.TIME_IN_STAGE, Trigger.NO_ACTIVITY, Trigger.ANNIVERSARY, Trigger.SCHEDULE}
)


class Rule(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    record_type = models.CharField(_("record type"), max_length=20, choices=RecordType.choices)
    pipeline = models.ForeignKey(
        Pipeline,
        verbose_name=_("pipeline"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    stage = models.ForeignKey(
        Stage,
        verbose_name=_("stage"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="robots",
        help_text=_("A stage robot: the rule acts on records in (or entering) this stage."),
    )
    is_active = models.BooleanField(_("active"), default=False)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    # What the trigger needs: {"field": "cf_level", "to": "vip"}, {"days": 3},
    # {"hours": 4}, {"use_time_limit": true}, {"at": "09:00"}, {"weekday": 1}...
    trigger_params = models.JSONField(_("trigger settings"), default=dict, blank=True)
    # {"match": "all"|"any", "conditions": [{"field", "op", "value"} | group]}: a group is
    # {"match": ..., "conditions": [...]} of leaves, one level deep.
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    # The periodic scan's high-water mark for time triggers.
    scanned_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("automation rule")
        verbose_name_plural = _("automation rules")
        ordering = ["record_type", "name", "id"]
        indexes = [models.Index(fields=["is_active", "record_type"], name="rule_active")]
        # A rule is named by its record type and name in the configuration file and log.
        constraints = [
            models.UniqueConstraint(fields=["record_type", "name"], name="rule_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class ActionKind(models.TextChoices):
    CREATE_TASK = "create_task", _("Create a task")
    ASSIGN_OWNER = "assign_owner", _("Assign the owner")
    SET_FIELD = "set_field", _("Set a field")
    MOVE_STAGE = "move_stage", _("Move to a stage")
    ADD_TAG = "add_tag", _("Add a tag")
    RELEASE = "release", _("Release to the public pool")
    SEND_EMAIL = "send_email", _("Send an email")
    NOTIFY = "notify", _("Send an in-app notification")
    DELAY = "delay", _("Wait before the next actions")


class RuleAction(models.Model):
    rule = models.ForeignKey(
        Rule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="actions"
    )
    order = models.PositiveIntegerField(_("order"), default=0)
    # A key of the action registry (automation.actions); integrations add their own.
    kind = models.CharField(_("action"), max_length=40)
    params = models.JSONField(_("settings"), default=dict, blank=True)
    # What the action remembers between runs (round-robin's last assignee).
    state = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        verbose_name = _("action")
        verbose_name_plural = _("actions")
        ordering = ["rule", "order", "id"]

    def __str__(self) -> str:
        from .actions import action_label

        return action_label(self.kind)


class RunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    WAITING = "waiting", _("Waiting (delay)")
    DONE = "done", _("Done")
    NOT_MATCHED = "not_matched", _("Conditions not met")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")
    STOPPED = "stopped", _("Stopped (depth limit)")


class RuleRun(models.Model):
    """One firing of a rule on one record: what triggered it, each condition's outcome,
    each action's result. `occurrence` makes the firing unique (the event it answers,
    or the time trigger's occasion), so a duplicated event or scan fires it once."""

    rule = models.ForeignKey(
        Rule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="runs"
    )
    record_type = models.CharField(_("record type"), max_length=20)
    record_id = models.PositiveBigIntegerField()
    record_label = models.CharField(_("record"), max_length=200, blank=True)
    occurrence = models.CharField(max_length=80)
    trigger = models.CharField(_("trigger"), max_length=200)
    event = models.ForeignKey(
        Change, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    depth = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        _("status"), max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING
    )
    # [{"field", "label", "op", "value", "actual", "ok"}] and {"match", "ok"} per group.
    trace = models.JSONField(_("conditions"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)

    class Meta:
        verbose_name = _("rule run")
        verbose_name_plural = _("rule runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "record_type", "record_id", "occurrence"], name="rulerun_once"
            )
        ]
        indexes = [
            models.Index(fields=["record_type", "record_id", "-created_at"], name="rulerun_record"),
            models.Index(fields=["rule", "-created_at"], name="rulerun_rule"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} · {self.record_label or self.record_id}"


class ScheduledStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CLAIMED = "claimed", _("Running")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


class ScheduledAction(models.Model):
    """Work due at a time: a run's actions from `step` on. Claimed by one worker with a
    conditional UPDATE; a claim older than the stale limit is taken again."""

    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="scheduled")
    step = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(_("due"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=20, choices=ScheduledStatus.choices, default=ScheduledStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("scheduled action")
        verbose_name_plural = _("scheduled actions")
        ordering = ["due_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="scheduledaction_once")]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="scheduledaction_due",
                condition=models.Q(status__in=["pending", "claimed"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.run} @ {self.due_at:%Y-%m-%d %H:%M}"


class ActionStatus(models.TextChoices):
    STARTED = "started", _("Started")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")


class ActionRun(models.Model):
    """One action of one run, done once: its row and its effect commit together (an
    email's row commits before it is sent, so a retry never sends it twice)."""

    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="action_runs")
    step = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=40)
    status = models.CharField(
        max_length=20, choices=ActionStatus.choices, default=ActionStatus.DONE
    )
    result = models.CharField(_("result"), max_length=500, blank=True)
    # What the action made (a task), and for a task completed when the record leaves
    # its stage, that stage.
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    leave_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="actionrun_once")]
        indexes = [
            models.Index(
                fields=["leave_stage"],
                name="actionrun_leave_stage",
                condition=models.Q(leave_stage__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.run} #{self.step}"


class EmailTemplate(models.Model):
    """An email a rule sends; {{ placeholders }} are the record's fields
    (automation.placeholders)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("email template")
        verbose_name_plural = _("email templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NotificationKind(models.TextChoices):
    RULE = "rule", _("Automation")
    ASSIGNMENT = "assignment", _("Assignment")
    MENTION = "mention", _("Mention")


class Notification(models.Model):
    """An in-app message to one person (the bell), linking to its record."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(
        _("kind"), max_length=20, choices=NotificationKind.choices, default=NotificationKind.RULE
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"), blank=True)
    record_type = models.CharField(max_length=20, blank=True)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    created_at = models.DateTimeField(_("sent"), default=timezone.now)
    # The digest email that listed it (a notification is in one digest at most).
    digested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user"),
            models.Index(
                fields=["user"],
                name="notification_unread",
                condition=models.Q(read_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


DIGEST_HOURS = [(hour, f"{hour:02d}:00") for hour in range(24)]


class NotificationSettings(models.Model):
    """A person's choice of a daily digest email of their unread notifications, and the
    hour of the day it goes out (in the site's time zone, TIME_ZONE: people have none of
    their own)."""

    user = models.OneToOneField(
        USER, on_delete=models.CASCADE, related_name="notification_settings"
    )
    daily_digest = models.BooleanField(_("daily digest by email"), default=False)
    digest_hour = models.PositiveSmallIntegerField(
        _("digest hour"), choices=DIGEST_HOURS, default=8
    )
    # The local day (TIME_ZONE) of the last digest claimed: at most one a day.
    digest_sent_on = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification settings")
        verbose_name_plural = _("notification settings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(digest_hour__lte=23), name="notification_digest_hour"
            )
        ]

    def __str__(self) -> str:
        return str(self.user)
