"""A record list as its page lists it: the page's FilterSet (with `q`, the quick search),
its defaults (open leads unless a status is asked for) and the related rows it reads,
paged by a cursor instead of page numbers."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.pagination import CursorPagination

from crm.views.exports import list_view_for

PAGING_PARAMS = ("cursor", "page_size", "format")


def list_view_of(view):
    return list_view_for(view.spec.key)


def _parameter(name: str, description: str) -> dict:
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": description,
        "schema": {"type": "string"},
    }


class ListPageFilter(BaseFilterBackend):
    """Filters the visible records with the type's list page: its FilterSet, then its
    `list_defaults`. Filters that do not validate are a 400 naming them."""

    def filter_queryset(self, request, queryset, view):
        list_view = list_view_of(view)
        django_request = request._request
        params = request.query_params.copy()
        for key in PAGING_PARAMS:
            params.pop(key, None)
        filterset_class = list_view.filterset_class
        if filterset_class is not None:
            filterset = filterset_class(params or None, queryset=queryset, request=django_request)
            if filterset.is_bound and not filterset.is_valid():
                raise ValidationError(
                    {name: [str(m) for m in errors] for name, errors in filterset.errors.items()}
                )
            queryset = filterset.qs
        listing = list_view()
        listing.setup(django_request)
        return listing.list_defaults(queryset)

    def get_schema_operation_parameters(self, view):
        filterset_class = list_view_of(view).filterset_class
        if filterset_class is None:
            return []
        parameters = []
        for name, filter_ in filterset_class.base_filters.items():
            label = str(filter_.label or name)
            suffixes = getattr(filter_.extra.get("widget"), "suffixes", None) or getattr(
                getattr(filter_.field_class, "widget", None), "suffixes", None
            )
            if suffixes:
                for suffix in suffixes:
                    parameters.append(_parameter(f"{name}_{suffix}", f"{label} ({suffix})"))
            else:
                parameters.append(_parameter(name, label))
        return parameters


class RecordCursorPagination(CursorPagination):
    """Newest first, stable however many rows share a creation time (the id breaks ties);
    `page_size` 1..100 (beyond: 100), 25 by default."""

    ordering = ("-created_at", "-id")
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    page_size_query_description = _("Rows per page, 1 to 100 (default 25).")
    cursor_query_description = _("The cursor of the page: the `next` or `previous` link's.")
