"""Read-only configuration for API clients: pipelines and their stages, dictionaries and
their items, custom-field definitions — what a client needs to read and write records
(which stage ids exist, which item codes a field takes, which custom fields a type has).

Names and labels come in the caller's language (`localized`: the English text for an
English reader when the admin gave one). Who sees what follows the pages:

- pipelines: those of the record types (lead, deal) the caller's role may view — the
  board's rule; inactive ones too, marked, since older records may still sit in them;
- dictionaries: everyone signed in (every form offers their items);
- custom fields: those of the record types the caller may view, without the fields the
  caller's field permissions hide (crm.fields.schema), each with the caller's access.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access
from crm.fields import schema as field_schema
from crm.models import CustomFieldRecordType, Dictionary, DictionaryItem
from crm.params import parse_id
from pipelines.kinds import STAGED_TYPES
from pipelines.models import Pipeline, PipelineKind, Stage

# --- serializers ------------------------------------------------------------------------


class StageSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", help_text=_("In the caller's language."))
    guide = serializers.CharField(source="display_guide")
    required_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text=_("Fields a record must have filled to enter the stage (cf_<key>: custom)."),
    )

    class Meta:
        model = Stage
        fields = [
            "id",
            "name",
            "kind",
            "order",
            "probability",
            "color",
            "time_limit_days",
            "required_fields",
            "guide",
        ]


class PipelineSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", help_text=_("In the caller's language."))
    stages = StageSerializer(many=True, read_only=True)

    class Meta:
        model = Pipeline
        fields = ["id", "kind", "name", "order", "is_default", "is_active", "stages"]


class DictionaryItemSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="__str__", help_text=_("In the caller's language."))

    class Meta:
        model = DictionaryItem
        fields = ["id", "code", "label", "order", "color", "is_default", "is_active"]


class DictionarySerializer(serializers.ModelSerializer):
    items = DictionaryItemSerializer(many=True, read_only=True)

    class Meta:
        model = Dictionary
        fields = ["code", "name", "items"]


class CustomFieldSerializer(serializers.Serializer):
    """A custom field as the caller may use it (from a crm.fields.schema FieldSpec)."""

    key = serializers.CharField(source="custom.key")
    name = serializers.CharField(help_text=_("Its name in records: cf_<key>."))
    record_type = serializers.ChoiceField(
        source="custom.record_type", choices=CustomFieldRecordType.choices
    )
    label = serializers.CharField(help_text=_("In the caller's language."))
    field_type = serializers.CharField(source="custom.field_type")
    access = serializers.ChoiceField(
        choices=[("editable", "editable"), ("readonly", "readonly")],
        help_text=_("What the caller's field permissions allow."),
    )
    required = serializers.BooleanField(source="custom.required")
    unique = serializers.BooleanField(source="custom.unique")
    dictionary = serializers.CharField(
        source="custom.dictionary.code",
        allow_null=True,
        default=None,
        help_text=_("The code of the dictionary whose items a choice field takes."),
    )
    max_length = serializers.IntegerField(source="custom.max_length", allow_null=True)
    min_value = serializers.DecimalField(
        source="custom.min_value", max_digits=20, decimal_places=4, allow_null=True
    )
    max_value = serializers.DecimalField(
        source="custom.max_value", max_digits=20, decimal_places=4, allow_null=True
    )
    pattern = serializers.CharField(source="custom.pattern")
    default = serializers.CharField(source="custom.default")
    help_text = serializers.CharField(source="custom.display_help")
    section = serializers.CharField(source="custom.section")
    order = serializers.IntegerField(source="custom.order")


# --- who sees what ----------------------------------------------------------------------


def viewable_pipeline_kinds(user) -> list[str]:
    return [t.key for t in STAGED_TYPES if access.has_permission(user, t.key, "view")]


def pipelines_for(user):
    stages = Prefetch("stages", queryset=Stage.objects.order_by("order", "id"))
    return (
        Pipeline.objects.filter(kind__in=viewable_pipeline_kinds(user))
        .prefetch_related(stages)
        .order_by("kind", "order", "id")
    )


def custom_field_types_for(user) -> list[str]:
    return [key for key in CustomFieldRecordType.values if access.has_permission(user, key, "view")]


def _choice_param(request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        raise exceptions.ValidationError(
            {name: [_("Choose one of: %(choices)s.") % {"choices": ", ".join(choices)}]}
        )
    return value


KIND_PARAM = OpenApiParameter(
    "kind",
    OpenApiTypes.STR,
    enum=PipelineKind.values,
    description=_("Only the pipelines of leads or of deals."),
)
RECORD_TYPE_PARAM = OpenApiParameter(
    "record_type",
    OpenApiTypes.STR,
    enum=CustomFieldRecordType.values,
    description=_("Only the custom fields of this record type."),
)


# --- views ------------------------------------------------------------------------------


@extend_schema(tags=["configuration"])
class PipelineList(generics.ListAPIView):
    """The pipelines of the record types (leads, deals) the caller may view, each with
    its stages in order."""

    serializer_class = PipelineSerializer
    pagination_class = None

    def get_queryset(self):
        queryset = pipelines_for(self.request.user)
        kind = _choice_param(self.request, "kind", PipelineKind.values)
        return queryset.filter(kind=kind) if kind else queryset

    @extend_schema(parameters=[KIND_PARAM])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["configuration"])
class PipelineDetail(generics.RetrieveAPIView):
    """One pipeline and its stages; 404 for a pipeline of a type the caller may not view."""

    serializer_class = PipelineSerializer

    def get_queryset(self):
        return pipelines_for(self.request.user)

    def get_object(self):
        pk = parse_id(self.kwargs["pk"])
        found = self.get_queryset().filter(pk=pk).first() if pk else None
        if found is None:
            raise Http404
        return found


CODE_MAX = Dictionary._meta.get_field("code").max_length


def dictionaries():
    items = Prefetch("items", queryset=DictionaryItem.objects.order_by("order", "id"))
    return Dictionary.objects.prefetch_related(items).order_by("code")


@extend_schema(tags=["configuration"])
class DictionaryList(generics.ListAPIView):
    """Every data dictionary with its items (inactive ones too, marked: records may still
    hold them). A record's dictionary field takes an item's code."""

    serializer_class = DictionarySerializer
    pagination_class = None

    def get_queryset(self):
        return dictionaries()


@extend_schema(tags=["configuration"])
class DictionaryDetail(generics.RetrieveAPIView):
    """One dictionary, by its code."""

    serializer_class = DictionarySerializer

    def get_object(self):
        code = self.kwargs["code"]  # a slug (the URL says so); no code is longer
        found = dictionaries().filter(code=code).first() if len(code) <= CODE_MAX else None
        if found is None:
            raise Http404
        return found


@extend_schema(tags=["configuration"])
class CustomFieldList(APIView):
    """The active custom fields of the record types the caller may view, without those
    the caller's field permissions hide, in the admins' order."""

    @extend_schema(parameters=[RECORD_TYPE_PARAM], responses=CustomFieldSerializer(many=True))
    def get(self, request):
        allowed = custom_field_types_for(request.user)
        wanted = _choice_param(request, "record_type", CustomFieldRecordType.values)
        types = [wanted] if wanted else allowed
        specs = [
            spec
            for record_type in types
            if record_type in allowed
            for spec in field_schema.custom_specs(request.user, record_type)
        ]
        return Response(CustomFieldSerializer(specs, many=True).data)
