"""Exports of a list as filtered: /customers/export/?format=csv|xlsx&<the list's filters>.

The rows are the list's (same filterset, its defaults, same sort) over
`exportable_by(user)`, so the role's "export" permission and data scope apply (without
the permission: 403); the columns come from crm.exports, where field permissions are
applied. Another app's list exports with a `RecordExportView` of its own list view and
an `ExportSpec` in its record type's spec (pipelines: leads, deals).

A list of more rows than settings.CRM_EXPORT_BACKGROUND_ROWS is handed to the background
exporter another app registered (imports: a job, a worker, a download link); the worker
rebuilds the same rows with `export_queryset(list_view_for(type), standalone_request(
user, query))`, so the list's filters and sort are written once, in the list view.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.module_loading import import_string
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views import View

from accounts import access

from .. import exports
from ..filters import dictionary_items
from .activities import ActivityListView
from .base import NON_FILTER_PARAMS
from .contacts import ContactListView
from .customers import CustomerListView
from .tasks import TaskListView

logger = logging.getLogger(__name__)

FORMAT_PARAM = "format"


class FilterErrors(Exception):
    """The list's filters in the query do not validate (a date that is none, an owner
    outside the scope): nothing is exported."""


def export_queryset(list_view, request) -> QuerySet:
    """The rows `list_view` lists for `request` (its filters, their defaults, its sort)
    out of what its user may export. Raises FilterErrors when the filters do not
    validate."""
    listing = list_view()
    listing.setup(request)
    model, user = listing.model, request.user
    params = listing.filter_params()
    params.pop(FORMAT_PARAM, None)
    queryset = model.objects.exportable_by(user)
    if listing.filterset_class is not None:
        filterset = listing.filterset_class(params or None, queryset=queryset, request=request)
        if filterset.is_bound and not filterset.is_valid():
            raise FilterErrors
        queryset = filterset.qs
    queryset = listing.list_defaults(queryset)
    return queryset.order_by(*listing.ordering_for(listing.current_sort()))


def list_view_for(record_type: str):
    """The list view whose filters and sort `record_type`'s export follows (its
    ExportSpec.list_view)."""
    return import_string(exports.export_spec(record_type).list_view)


def standalone_request(user, query: str) -> HttpRequest:
    """A GET of `query` by `user`, outside any request: what a list's filters and sort
    read (the user, the parameters) when a worker rebuilds a list's rows."""
    request = HttpRequest()
    request.method = "GET"
    request.user = user
    request.GET = QueryDict(query)
    return request


class RecordExportView(LoginRequiredMixin, View):
    """Exports what `list_view` shows, with its filters and sort: in the request, or
    when more rows than settings.CRM_EXPORT_BACKGROUND_ROWS match and another app
    registered a background exporter (crm.exports.register_background_exporter), handed
    to it."""

    list_view = None  # a RecordListView subclass
    list_url = ""  # URL name of that list, to return to when the filters have errors

    def get(self, request, *args, **kwargs):
        model = self.list_view.model
        record_type, user = model.record_type, request.user
        if not access.has_permission(user, record_type, "export"):
            raise PermissionDenied
        fmt = request.GET.get(FORMAT_PARAM, "csv")
        if fmt not in exports.FORMATS:
            fmt = "csv"
        params = request.GET.copy()
        for key in (FORMAT_PARAM, *NON_FILTER_PARAMS):
            params.pop(key, None)
        try:
            queryset = export_queryset(self.list_view, request)
        except FilterErrors:
            messages.error(request, _("Correct the filters before exporting."))
            return HttpResponseRedirect(f"{reverse(self.list_url)}?{params.urlencode()}")
        title = str(capfirst(model._meta.verbose_name_plural))

        background = exports.background_exporter()
        threshold = settings.CRM_EXPORT_BACKGROUND_ROWS
        # Counted no further than the threshold: a big list costs no full count here.
        if background is not None and queryset.order_by()[: threshold + 1].count() > threshold:
            return background(
                request, record_type=record_type, fmt=fmt, query=params.urlencode(), title=title
            )

        # The request's one load of dictionary items, shared with the filters.
        lookups = exports.Lookups(items=dictionary_items(request))
        columns = exports.columns(user, record_type, lookups)
        result = exports.write(fmt, columns, exports.rows_of(queryset), title=title)

        name = f"{title}-{timezone.localdate():%Y-%m-%d}"
        if result.truncated:
            name += "-" + _("first %(count)s rows") % {"count": result.rows}
            messages.warning(
                request,
                _(
                    "The export holds only the first %(count)s rows. Narrow the filters to "
                    "export the rest."
                )
                % {"count": result.rows},
            )
        extension, content_type = exports.FORMATS[fmt]
        response = HttpResponse(result.content, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, f"{name}.{extension}")
        logger.info(
            "export %s %s: %s rows%s by user %s",
            record_type,
            fmt,
            result.rows,
            " (cut off)" if result.truncated else "",
            user.pk,
        )
        return response


class CustomerExportView(RecordExportView):
    list_view = CustomerListView
    list_url = "customers:list"


class ContactExportView(RecordExportView):
    list_view = ContactListView
    list_url = "contacts:list"


class ActivityExportView(RecordExportView):
    list_view = ActivityListView
    list_url = "activities:list"


class TaskExportView(RecordExportView):
    list_view = TaskListView
    list_url = "tasks:list"
