"""Leads and deals take raw values (imports, the API) through crm.fields.coerce: how the
fields their model fields' types do not describe are read, named by the lead and deal
specs (pipelines/record_types.py, `coercers`)."""

from crm.fields import coerce

from .models import Pipeline, Stage


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


LEAD_COERCERS = {
    "phone": coerce.phone_coercer,
    "pipeline": coerce.reference_coercer(_pipelines_of("lead")),
    "stage": coerce.reference_coercer(_stages_of("lead")),
}
DEAL_COERCERS = {
    # "35%", 35 or 0.35 (a percent cell from Excel): 35.
    "probability": coerce.percent_coercer,
    "pipeline": coerce.reference_coercer(_pipelines_of("deal")),
    "stage": coerce.reference_coercer(_stages_of("deal")),
}
