"""Exports of a list as filtered: /customers/export/?format=csv|xlsx&<the list's filters>.

The rows are the list's (same filterset, its defaults, same sort) over
`exportable_by(user)`, so the role's "export" permission and data scope apply (without
the permission: 403); the columns come from crm.exports, where field permissions are
applied. Another app's list exports with a `RecordExportView` of its own list view and
an `ExportSpec` in its record type's spec (pipelines: leads, deals).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views import View

from accounts import access

from .. import exports
from ..filters import dictionary_items
from .contacts import ContactListView
from .customers import CustomerListView

logger = logging.getLogger(__name__)

FORMAT_PARAM = "format"


class RecordExportView(LoginRequiredMixin, View):
    """Exports what `list_view` shows, with its filters and sort."""

    list_view = None  # a RecordListView subclass
    list_url = ""  # URL name of that list, to return to when the filters have errors

    def get(self, request, *args, **kwargs):
        listing = self.list_view()
        listing.setup(request, *args, **kwargs)
        model, record_type, user = listing.model, listing.record_type, request.user
        if not access.has_permission(user, record_type, "export"):
            raise PermissionDenied
        fmt = request.GET.get(FORMAT_PARAM, "csv")
        if fmt not in exports.FORMATS:
            fmt = "csv"

        params = listing.filter_params()
        params.pop(FORMAT_PARAM, None)
        queryset = model.objects.exportable_by(user)
        if listing.filterset_class is not None:
            filterset = listing.filterset_class(params or None, queryset=queryset, request=request)
            if filterset.is_bound and not filterset.is_valid():
                messages.error(request, _("Correct the filters before exporting."))
                return HttpResponseRedirect(f"{reverse(self.list_url)}?{params.urlencode()}")
            queryset = filterset.qs
        queryset = listing.list_defaults(queryset)
        queryset = queryset.order_by(*listing.ordering_for(listing.current_sort()))

        # The request's one load of dictionary items, shared with the filters.
        lookups = exports.Lookups(items=dictionary_items(request))
        columns = exports.columns(user, record_type, lookups)
        title = str(capfirst(model._meta.verbose_name_plural))
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
