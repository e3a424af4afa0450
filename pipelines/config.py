"""Pipelines and stages are configuration (issue 6): every change is in the configuration
log (CONFIG_MODELS), they have a section of the configuration document
(DOCUMENT_SECTION) and of the exported file (CONFIG_SECTION: `export_config` /
`import_config`), and a custom field named by a stage's required fields shows that stage
among its usages before it is deactivated (stages_requiring). The lead and deal specs
(pipelines/record_types.py) name them: both types' pipelines are configured here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.config import transfer
from crm.config.document import DocumentSection
from crm.config.log import ConfigModel
from crm.fields import impact, schema
from crm.models import CustomField

from .kinds import staged_type
from .models import Deal, Lead, Pipeline, PipelineKind, Stage, StageHistory, StageKind

# Standard fields a stage may require besides the restrictable ones of
# schema.field_choices: what a quotation, a contract or a qualified lead needs.
ALWAYS_REQUIRABLE = {
    "lead": ["company_name", "person_name", "phone", "email"],
    "deal": ["amount", "contact", "expected_close_date"],
}
# Set by the lost stage itself (with its reason), never a condition to enter a stage.
NOT_REQUIRABLE = {"lost_reason"}


def _model(record_type: str):
    return staged_type(record_type).model


def standard_requirable(record_type: str) -> list[tuple[str, str]]:
    """(name, label) of the standard fields a stage of `record_type` may require."""
    from .services import field_label

    names = list(ALWAYS_REQUIRABLE.get(record_type, []))
    names += [n for n in schema.standard_field_names(record_type) if n not in names]
    return [(n, field_label(record_type, n)) for n in names if n not in NOT_REQUIRABLE]


def requirable_fields(record_type: str) -> list[tuple[str, str]]:
    """(name, label) of every field a stage of `record_type` may require: the standard
    ones, then the custom ones (an inactive custom field says so)."""
    choices = standard_requirable(record_type)
    for cf in schema.custom_fields(record_type, active=False):
        label = cf.display_label
        if not cf.is_active:
            label = _("%(label)s (inactive)") % {"label": label}
        choices.append((cf.name, label))
    return choices


def required_field_labels(record_type: str, names: Iterable[str]) -> list[str]:
    from .services import field_label

    return [field_label(record_type, name) for name in names]


def stages_in_use(stages: Iterable[Stage]) -> dict[int, dict[str, int]]:
    """Per stage id: the leads and deals in it and its stage-history rows (three
    queries for any number of stages); stages not in use are left out."""
    ids = [s.pk for s in stages if s.pk]
    usage: dict[int, dict[str, int]] = {}
    if not ids:
        return usage
    from django.db.models import Count

    for model, key in ((Lead, "leads"), (Deal, "deals")):
        rows = (
            model.objects.filter(stage_id__in=ids)
            .order_by()
            .values_list("stage_id")
            .annotate(n=Count("pk"))
        )
        for stage_id, n in rows:
            usage.setdefault(stage_id, {})[key] = n
    history = StageHistory.objects.filter(Q(to_stage_id__in=ids) | Q(from_stage_id__in=ids))
    for to_id, from_id in history.values_list("to_stage_id", "from_stage_id"):
        for stage_id in {to_id, from_id}:
            if stage_id in ids:
                entry = usage.setdefault(stage_id, {})
                entry["history"] = entry.get("history", 0) + 1
    return usage


def pipeline_in_use(pipeline: Pipeline) -> bool:
    return (
        Lead.objects.filter(pipeline=pipeline).exists()
        or Deal.objects.filter(pipeline=pipeline).exists()
        or StageHistory.objects.filter(pipeline=pipeline).exists()
    )


def stage_rule_errors(pipeline_name: str, stages: list[dict[str, Any]]) -> list[str]:
    """What is wrong with a pipeline's stages as a whole (each a dict with name, kind,
    probability): the admin and the import check the same rules."""
    errors = []
    kinds = [s.get("kind") for s in stages]
    if StageKind.OPEN not in kinds:
        errors.append(
            _("The pipeline “%(name)s” needs at least one open stage.") % {"name": pipeline_name}
        )
    for kind, label in ((StageKind.WON, _("won")), (StageKind.LOST, _("lost"))):
        names = [s.get("name") for s in stages if s.get("kind") == kind]
        if len(names) > 1:
            errors.append(
                _("The pipeline “%(name)s” may have only one %(kind)s stage; now %(stages)s are.")
                % {"name": pipeline_name, "kind": label, "stages": "、".join(map(str, names))}
            )
    for stage in stages:
        expected = {StageKind.WON: 100, StageKind.LOST: 0}.get(stage.get("kind"))
        if expected is not None and stage.get("probability") != expected:
            errors.append(
                _("The win probability of the stage “%(stage)s” must be %(value)s%%.")
                % {"stage": stage.get("name"), "value": expected}
            )
    return errors


# --- The configuration log ------------------------------------------------------------

CONFIG_MODELS = (
    ConfigModel(Pipeline, key_fields=("kind", "name")),
    ConfigModel(Stage, key_fields=("pipeline.kind", "pipeline.name", "name")),
)


# --- The configuration document -------------------------------------------------------


def document_context() -> dict[str, Any]:
    stages = Stage.objects.order_by("order", "id")
    pipelines = list(
        Pipeline.objects.order_by("kind", "order", "id").prefetch_related(
            Prefetch("stages", queryset=stages)
        )
    )
    for pipeline in pipelines:
        pipeline.stage_rows = [
            {
                "stage": stage,
                "required": required_field_labels(pipeline.kind, stage.required_fields or []),
            }
            for stage in pipeline.stages.all()
        ]
    return {"pipelines": pipelines}


DOCUMENT_SECTION = DocumentSection(
    key="pipelines",
    title=gettext_lazy("Pipelines and stages"),
    template="admin/pipelines/document_section.html",
    build=document_context,
    order=40,
)


# --- Export and import ----------------------------------------------------------------


class _StageShape(transfer.Section):
    """A stage inside its pipeline's entry, keyed by its name within the pipeline."""

    key = "pipelines"
    model = Stage
    key_fields = ("name",)
    fields = (
        "name_en",
        "order",
        "kind",
        "probability",
        "color",
        "time_limit_days",
        "required_fields",
        "guide",
        "guide_en",
    )


class PipelineSection(transfer.Section):
    """Pipelines keyed by kind and name, each with its stages keyed by name. Stages the
    system has and the file does not are left as they are (they may hold records)."""

    key = "pipelines"
    order = 35  # after custom fields, which stages' required fields name
    model = Pipeline
    key_fields = ("kind", "name")
    fields = ("name_en", "order", "is_default", "is_active")
    extra_keys = ("stages",)

    @property
    def title(self) -> str:
        return _("Pipelines and stages")

    def export(self) -> list[dict[str, Any]]:
        rows = []
        pipelines = self.queryset().order_by("kind", "order", "name").prefetch_related("stages")
        for pipeline in pipelines:
            stages = sorted(pipeline.stages.all(), key=lambda s: (s.order, s.name))
            rows.append(
                {
                    "kind": pipeline.kind,
                    "name": pipeline.name,
                    **transfer.export_values(pipeline, self.fields),
                    "stages": [
                        {"name": s.name, **transfer.export_values(s, _StageShape.fields)}
                        for s in stages
                    ],
                }
            )
        return rows

    def check(self, raw: Any, ctx: transfer.Context) -> list[transfer.Entry]:
        entries = super().check(raw, ctx)
        for kind in PipelineKind.values:
            defaults = [
                e.values.get("name")
                for e in entries
                if e.values.get("kind") == kind and e.values.get("is_default")
            ]
            if len(defaults) > 1:
                ctx.error(
                    self.key,
                    _("only one %(kind)s pipeline may be the default; the file marks %(names)s")
                    % {"kind": kind, "names": "、".join(defaults)},
                )
        # Pipelines that stop being the default first, so two are never default at once.
        return sorted(entries, key=lambda e: bool(e.values.get("is_default")))

    def check_entry(self, entry: transfer.Entry, ctx: transfer.Context) -> None:
        kind = entry.values.get("kind")
        if kind not in PipelineKind.values:
            ctx.error(
                f"{entry.where}.kind",
                _("unknown kind “%(value)s”; use one of: %(choices)s")
                % {"value": kind, "choices": ", ".join(PipelineKind.values)},
            )
            kind = None
        raw = entry.extra.get("stages", [])
        if not isinstance(raw, list):
            ctx.error(f"{entry.where}.stages", _("must be a list"))
            raw = []
        shape = _StageShape()
        stages, seen = [], set()
        for index, item in enumerate(raw):
            where = f"{entry.where}.stages[{index}]"
            checked = shape.check_object(item, where, ctx, prefix=f"{entry.where}.stages")
            if checked is None:
                continue
            if checked.key in seen:
                ctx.error(checked.where, transfer.duplicate_key_message(checked.key))
                continue
            seen.add(checked.key)
            stage_kind = checked.values.get("kind")
            if stage_kind is not None and stage_kind not in StageKind.values:
                ctx.error(
                    f"{checked.where}.kind",
                    _("unknown kind “%(value)s”; use one of: %(choices)s")
                    % {"value": stage_kind, "choices": ", ".join(StageKind.values)},
                )
            expected = {StageKind.WON: 100, StageKind.LOST: 0}.get(stage_kind)
            probability = checked.values.get("probability", expected)
            if expected is not None and probability != expected:
                ctx.error(
                    f"{checked.where}.probability",
                    _("a %(kind)s stage has a win probability of %(value)s")
                    % {"kind": stage_kind, "value": expected},
                )
            if kind is not None and "required_fields" in checked.values:
                self._check_required(checked, kind, ctx)
            stages.append(checked)
        entry.extra["stages"] = stages

    def _check_required(self, stage: transfer.Entry, kind: str, ctx: transfer.Context) -> None:
        names = stage.values["required_fields"]
        where = f"{stage.where}.required_fields"
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            ctx.error(where, _('must be a list of field names like ["contact", "amount"]'))
            return
        known = {n for n, _label in standard_requirable(kind)}
        known |= {cf.name for cf in schema.custom_fields(kind, active=False)}
        known |= {
            f"cf_{f.get('key')}"
            for f in ctx.data.get("custom_fields") or []
            if isinstance(f, dict) and f.get("record_type") == kind
        }
        unknown = [n for n in names if n not in known]
        if unknown:
            ctx.error(
                where,
                _("unknown fields for %(kind)s: %(names)s")
                % {"kind": kind, "names": ", ".join(unknown)},
            )

    def apply(self, entries: list[transfer.Entry], ctx: transfer.Context) -> None:
        for entry in entries:
            if entry.values.get("is_default"):
                other = (
                    Pipeline.objects.filter(kind=entry.values["kind"], is_default=True)
                    .exclude(name=entry.values["name"])
                    .first()
                )
                if other is not None:
                    ctx.error(
                        f"{entry.where}.is_default",
                        _(
                            "“%(other)s” is the default pipeline in this system; "
                            "set its is_default to false in the file"
                        )
                        % {"other": other.name},
                    )
                    continue
            obj = self.sync_object(self.model, self.lookup(entry), entry, ctx)
            if obj is not None:
                self.after_save(obj, entry, ctx)

    def after_save(self, pipeline: Pipeline, entry: transfer.Entry, ctx: transfer.Context) -> None:
        shape = _StageShape()
        existing = {s.name: s for s in pipeline.stages.all()}
        for stage in entry.extra.get("stages", []):
            stage.key = f"{entry.key}.{stage.key}"
            shape.sync_object(
                Stage, existing.get(stage.values["name"]), stage, ctx, pipeline=pipeline
            )
        stages = [
            {"name": s.name, "kind": s.kind, "probability": s.probability}
            for s in pipeline.stages.order_by("order", "id")
        ]
        for message in stage_rule_errors(pipeline.name, stages):
            ctx.error(entry.where, message)


CONFIG_SECTION = PipelineSection()


# --- Impact: stages requiring a custom field ------------------------------------------


def stages_requiring(obj) -> list[impact.Usage]:
    if not isinstance(obj, CustomField) or obj.record_type not in PipelineKind.values:
        return []
    stages = (
        Stage.objects.filter(pipeline__kind=obj.record_type)
        .select_related("pipeline")
        .order_by("pipeline__order", "pipeline_id", "order", "id")
    )
    title = _("Stages requiring it")
    return [
        impact.Usage(
            title,
            _("%(pipeline)s · %(stage)s") % {"pipeline": s.pipeline, "stage": s},
            impact.admin_url(s.pipeline),
        )
        for s in stages
        if obj.name in (s.required_fields or [])
    ]
