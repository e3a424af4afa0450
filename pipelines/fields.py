"""Leads and deals have custom fields and field permissions like customers (crm.fields),
and take raw values (imports, the API) through crm.fields.coerce: what their model
fields' types do not say is registered here."""

from crm.fields import coerce, schema

from .models import Pipeline, Stage

schema.register_record_type(
    "lead",
    "pipelines",
    "lead",
    ["person_name", "company_name", "title", "phone", "email", "wechat", "source", "notes"],
)
schema.register_record_type(
    "deal",
    "pipelines",
    "deal",
    ["amount", "expected_close_date", "contact", "lost_reason"],
)


def _pipelines_of(kind: str):
    """A lead's or a deal's pipeline: an active one of its kind, by name or id."""
    return lambda target: Pipeline.objects.active().filter(kind=kind)


def _stages_of(kind: str):
    """A stage of the record's pipeline when the record given has one (an import builds a
    stage column's converter per pipeline: `coercer_for(..., instance=Deal(pipeline=p))`),
    else of any active pipeline of the kind, where a name two pipelines share is refused."""

    def stages(target):
        pipeline_id = getattr(target.instance, "pipeline_id", None)
        if pipeline_id:
            return Stage.objects.filter(pipeline_id=pipeline_id)
        return Stage.objects.filter(pipeline__kind=kind, pipeline__is_active=True)

    return stages


coerce.register_coercer("lead", "phone", coerce.phone_coercer)
# "35%", 35 or 0.35 (a percent cell from Excel): 35.
coerce.register_coercer("deal", "probability", coerce.percent_coercer)
for _kind in ("lead", "deal"):
    coerce.register_coercer(_kind, "pipeline", coerce.reference_coercer(_pipelines_of(_kind)))
    coerce.register_coercer(_kind, "stage", coerce.reference_coercer(_stages_of(_kind)))
