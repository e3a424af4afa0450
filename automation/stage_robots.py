"""Stage robots on a pipeline's stage settings: a panel (pipelines.stage_panels) in each
stage row of the pipeline admin listing the rules of that stage (each linking to its
admin page, active or not) and the robot templates (automation.admin.ROBOT_TEMPLATES:
a task for the owner, notify the manager after N days, a task completed when the record
leaves the stage), each a link to the rule add page pre-filled with the template, the
record type, the pipeline and the stage."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.params import parse_id
from pipelines.models import Stage
from pipelines.stage_panels import StagePanel

from .models import Rule

CACHE_ATTR = "_automation_stage_robots"


def robot_stage(raw) -> Stage | None:
    """The stage a `stage` request parameter names, or None (a bad id is no stage)."""
    stage_id = parse_id(raw)
    if stage_id is None:
        return None
    return Stage.objects.select_related("pipeline").filter(pk=stage_id).first()


def template_url(key: str, stage: Stage) -> str:
    """The rule add page pre-filled with a robot template for `stage`."""
    query = urlencode(
        {
            "template": key,
            "record_type": stage.pipeline.kind,
            "pipeline": stage.pipeline_id,
            "stage": stage.pk,
        }
    )
    return f"{reverse('admin:automation_rule_add')}?{query}"


def _rules_by_stage(stage: Stage, request: HttpRequest) -> dict[int, list[Rule]]:
    """The rules of the stage's whole pipeline, read once per request (one query for
    every row of the pipeline page)."""
    cache = getattr(request, CACHE_ATTR, None)
    if cache is None:
        cache = {}
        setattr(request, CACHE_ATTR, cache)
    if stage.pipeline_id not in cache:
        by_stage: dict[int, list[Rule]] = {}
        rules = Rule.objects.filter(stage__pipeline_id=stage.pipeline_id).order_by("name", "id")
        for rule in rules.only("pk", "name", "is_active", "trigger", "stage_id"):
            by_stage.setdefault(rule.stage_id, []).append(rule)
        cache[stage.pipeline_id] = by_stage
    return cache[stage.pipeline_id]


def render_robots(stage: Stage, request: HttpRequest) -> str:
    """The stage's robots (name, trigger, active or not) and the templates to add one.
    Spans only: the admin puts a read-only cell inside a paragraph."""
    from .admin import ROBOT_TEMPLATES

    user = request.user
    may_see = user.has_perm("automation.view_rule") or user.has_perm("automation.change_rule")
    rows = []
    for rule in _rules_by_stage(stage, request).get(stage.pk, []):
        name = (
            format_html(
                '<a href="{}">{}</a>',
                reverse("admin:automation_rule_change", args=[rule.pk]),
                rule.name,
            )
            if may_see
            else rule.name
        )
        state = (
            format_html('<span class="robot-on" style="{}">{}</span>', ON, _("active"))
            if rule.is_active
            else format_html('<span class="robot-off" style="{}">{}</span>', OFF, _("inactive"))
        )
        rows.append(
            format_html(
                '<span class="robot" data-rule="{}" style="{}">{} '
                '<span style="{}">· {} ·</span> {}</span>',
                rule.pk,
                BLOCK,
                name,
                QUIET,
                rule.get_trigger_display(),
                state,
            )
        )
    if rows:
        listed = format_html_join("", "{}", ((row,) for row in rows))
    else:
        listed = format_html(
            '<span class="robot-none" style="{}">{}</span>', BLOCK + QUIET, _("No robots yet.")
        )
    offers = ""
    if user.has_perm("automation.add_rule"):
        offers = format_html(
            '<span class="robot-add" style="{}"><span style="{}">{}</span>{}</span>',
            "display:block;margin-top:.4em",
            BLOCK + QUIET,
            _("Add a robot:"),
            format_html_join(
                "",
                '<a href="{}" data-template="{}" style="{}">+ {}</a>',
                (
                    (template_url(key, stage), key, BLOCK, preset["label"])
                    for key, preset in ROBOT_TEMPLATES.items()
                ),
            ),
        )
    return format_html(
        '<span class="stage-robots" data-stage="{}" style="{}">{}{}</span>',
        stage.pk,
        "display:block;min-width:14em;font-size:12px;line-height:1.5",
        listed,
        offers,
    )


BLOCK = "display:block;"
QUIET = "color:var(--body-quiet-color,#666);"
ON = "color:#2e7d32;font-weight:600"
OFF = "font-style:italic"

ROBOTS_PANEL = StagePanel(
    key="robots", title=gettext_lazy("Robots"), render=render_robots, order=10
)
