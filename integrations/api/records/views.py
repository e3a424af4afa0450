"""The record endpoints: one viewset class per record type, made by `viewset_for(spec)`.

Every type gets the same rules (accounts.access is the one choke point):

- reads come from `Model.objects.visible_to(user)`; a record outside it is a 404;
- writes and actions from `editable_by(user)`: a record the user sees but may not
  change is a 403 (as on the pages), one they do not see a 404;
- the role's permission on the type (`<type>.view`, `.add`, `.change`) first: 403;
- DELETE needs the role's `<type>.delete` and the record in `deletable_by(user)`, and
  deletes only a record nothing else hangs on (crm.services.deletion): a customer with
  contacts or deals is a 409 naming them, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from accounts import access
from crm.services import deletion

from . import actions, values
from .listing import ListPageFilter, RecordCursorPagination, list_view_of
from .serializers import record_serializer, write_serializer
from .specs import ApiSpec

# The role's permission each viewset action needs on the record type.
PERMISSION_OF = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class RecordTypePermission(BasePermission):
    """The role may do this to the type at all (`customer.add`...)."""

    def has_permission(self, request, view) -> bool:
        action = PERMISSION_OF.get(view.action, "change")
        return access.has_permission(request.user, view.spec.key, action)


class RecordViewSet(viewsets.GenericViewSet):
    spec: ApiSpec
    permission_classes = [IsAuthenticated, RecordTypePermission]
    pagination_class = RecordCursorPagination
    filter_backends = [ListPageFilter]
    # Ids the database can hold: a longer number is no record (404), never an overflow.
    lookup_value_regex = r"[0-9]{1,18}"

    # --- rows ---------------------------------------------------------------------------
    @property
    def model(self) -> type[models.Model]:
        return self.spec.model

    def related(self, queryset: models.QuerySet) -> models.QuerySet:
        """What the list page reads with each row (dictionary items come from the
        request's one load instead of a join each)."""
        list_view = list_view_of(self)
        if list_view.select_related:
            queryset = queryset.select_related(*list_view.select_related)
        prefetch = [*list_view.prefetch_related]
        if "tags" in self.spec.fields and "tags" not in prefetch:
            prefetch.append("tags")
        return queryset.prefetch_related(*prefetch) if prefetch else queryset

    def get_queryset(self):
        return self.related(self.model.objects.visible_to(self.request.user))

    def record(self, action: str = "change") -> models.Model:
        """The record of the URL for `action` (its rows: `visible_to`, `editable_by`):
        404 outside what the user sees, 403 when seen but not theirs to change."""
        user, pk = self.request.user, self.kwargs["pk"]
        found = self.related(self.model.objects.for_action(user, action)).filter(pk=pk).first()
        if found is None:
            if action != "view" and self.model.objects.visible_to(user).filter(pk=pk).exists():
                raise PermissionDenied
            raise NotFound
        return found

    def represent(self, records) -> Any:
        representer = values.Representer(self.spec, self.request)
        if isinstance(records, models.Model):
            return representer(records)
        return [representer(record) for record in records]

    def saved(self, record: models.Model, code=status.HTTP_200_OK) -> Response:
        return Response(self.represent(record), status=code)

    # --- reads --------------------------------------------------------------------------
    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.represent(page))

    def retrieve(self, request, *args, **kwargs):
        return self.saved(self.record("view"))

    # --- writes -------------------------------------------------------------------------
    def run(self, save, record: models.Model, extra: dict) -> models.Model:
        try:
            return save(record, self.request.user, extra)
        except DjangoValidationError as exc:
            raise values.service_errors(exc) from None


class CreateRecord:
    def create(self, request, *args, **kwargs):
        spec, user = self.spec, request.user
        record = self.model()
        parsed = values.parse_write(spec, request.data, user, instance=record)
        for name in spec.default_to_user:
            if isinstance(request.data, dict) and name not in request.data:
                parsed.values.setdefault(name, user)
        extra = values.apply(parsed, record)
        stage = parsed.values.get("stage")
        if stage is not None and "pipeline" not in parsed.values:
            record.pipeline = stage.pipeline
        return self.saved(self.run(spec.create, record, extra), status.HTTP_201_CREATED)


class UpdateRecord:
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        spec = self.spec
        record = self.record("change")
        parsed = values.parse_write(
            spec, request.data, request.user, instance=record, partial=partial
        )
        extra = values.apply(parsed, record)
        extra.setdefault("tags", None)
        return self.saved(self.run(spec.update, record, extra))

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)


class DeleteRecord:
    def destroy(self, request, *args, **kwargs):
        record = self.record("delete")
        try:
            deletion.delete_record(record, by=request.user)
        except DjangoValidationError as exc:
            raise actions.Conflict(" ".join(exc.messages)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def _schema_views(spec: ApiSpec, read, write) -> dict:
    name = spec.model.__name__.lower()
    one = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    tags = [spec.path]
    refused = OpenApiResponse(description="Bad values: errors by field, in the user's language.")
    views = {
        "list": extend_schema(
            tags=tags,
            summary=f"List {spec.path}",
            description="The list page's filters apply, `q` searches; newest first, by cursor.",
            responses={200: read(many=True)},
        ),
        "retrieve": extend_schema(tags=tags, summary=f"Read {one}", responses={200: read}),
    }
    if spec.create is not None:
        views["create"] = extend_schema(
            tags=tags,
            summary=f"Create {one}",
            request=write,
            responses={201: read, 400: refused},
        )
    if spec.update is not None:
        for method, summary in (("update", "Replace"), ("partial_update", "Change")):
            views[method] = extend_schema(
                tags=tags,
                summary=f"{summary} {one}",
                request=write,
                responses={200: read, 400: refused},
            )
    views["destroy"] = extend_schema(
        tags=tags,
        summary=f"Delete {one}",
        description="Only a record nothing else belongs to (a customer without contacts, "
        "follow-ups, tasks or deals...): else a 409 naming what is attached.",
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: OpenApiResponse(description="Records still belong to it."),
        },
    )
    for action_name in spec.actions:
        views[action_name] = extend_schema(tags=tags, **actions.schema_of(action_name, read))
    return views


def viewset_for(spec: ApiSpec) -> type[RecordViewSet]:
    """The viewset of one record type: reads always; create and update when the spec
    names their services; its actions (actions.ACTIONS)."""
    bases: list[type] = []
    if spec.create is not None:
        bases.append(CreateRecord)
    if spec.update is not None:
        bases.append(UpdateRecord)
    bases.append(DeleteRecord)
    bases += [actions.ACTIONS[name] for name in spec.actions]
    read, write = record_serializer(spec), write_serializer(spec)
    name = f"{spec.model.__name__}ViewSet"
    viewset = type(
        name,
        (*bases, RecordViewSet),
        {"spec": spec, "serializer_class": read, "__doc__": f"{spec.model.__name__} records."},
    )
    return extend_schema_view(**_schema_views(spec, read, write))(viewset)
