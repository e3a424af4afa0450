"""Deal pages: the list, the detail (stage guide and path, moving, pipeline change,
follow-ups, tasks, history), create and edit."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from accounts import access
from crm.money import format_money, money_html
from crm.params import id_param
from crm.views.base import (
    BuiltinView,
    BulkAction,
    RecordCreateView,
    RecordListView,
    RecordUpdateView,
)
from crm.views.exports import RecordExportView

from .. import services
from ..filters import DealFilter
from ..forms import DealForm, contacts_of, stage_choices
from ..models import Deal, PipelineKind, Stage
from ..moves import request_pipeline_change
from .common import (
    LogActivityView,
    StagedRecordDetailView,
    StageMoveView,
    owners_context,
    transfer,
)
from .rows import DealRows

# A list opened from a report (a funnel's figure) says so: ?from=<the report's address>.
FROM_PARAM = "from"


class DealListView(RecordListView):
    model = Deal
    filterset_class = DealFilter
    template_name = "pipelines/deals/list.html"
    select_related = ("owner", "stage", "customer")
    sort_fields = {
        "created": "created_at",
        "title": "title",
        "amount": "amount",
        "expected_close": "expected_close_date",
        "stage": "stage__order",
        "in_stage": "stage_entered_at",
        "updated": "updated_at",
    }
    default_sort = "-created"
    builtin_views = (
        BuiltinView("mine", gettext_lazy("My deals"), "owner=me&status=open"),
        BuiltinView("closing", gettext_lazy("Closing this month"), "closing=month&status=open"),
        BuiltinView("overdue", gettext_lazy("Stuck past the time limit"), "overdue=true"),
        BuiltinView("won", gettext_lazy("Won"), "status=won"),
    )
    bulk_actions = (BulkAction("transfer", gettext_lazy("Transfer to…"), transfer),)

    def paginate_queryset(self, queryset, page_size):
        result = super().paginate_queryset(queryset, page_size)
        for deal in result[2]:
            # Compact in the list (¥93.6万), the exact amount as its title.
            deal.amount_text = money_html(deal.amount)
            deal.weighted_text = money_html(deal.weighted_amount)
        return result

    def filter_params(self):
        # Where the list was opened from is not a filter: saved views and exports leave it.
        params = super().filter_params()
        params.pop(FROM_PARAM, None)
        return params

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["owners"] = owners_context(self.request, context["bulk_actions"])
        context["rows"] = DealRows(
            hidden=self.hidden_fields,
            bulk=bool(context["bulk_actions"]),
            custom=bool(self.custom_columns),
        )(context["object_list"])
        context["back_url"] = report_origin(self.request.GET.get(FROM_PARAM, ""))
        return context


def report_origin(target: str) -> str:
    """`target` when it is a report page of this site (a path under the reports' URLs,
    with its query), else "": a drill-down's way back, never a redirect elsewhere."""
    if (
        not target
        or len(target) > 2000
        or any(ord(c) < 32 or c == "\x7f" for c in target)
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or not url_has_allowed_host_and_scheme(target, allowed_hosts=None)
    ):
        return ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return ""
    try:
        match = resolve(parts.path)
    except Resolver404:
        return ""
    return target if match.namespace == "reports" else ""


class DealExportView(RecordExportView):
    """The deal list as filtered, as CSV or Excel (the deal spec's columns)."""

    list_view = DealListView
    list_url = "deals:list"


class DealDetailMixin:
    model = Deal
    template_name = "pipelines/deals/detail.html"
    select_related = ("stage", "pipeline", "owner", "created_by", "customer", "contact")

    def activity_customer(self):
        return self.object.customer

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        deal = self.object
        context.update(
            amount_text=format_money(deal.amount),
            weighted_text=format_money(deal.weighted_amount),
        )
        if context["can_change"]:
            _stages, grouped = stage_choices(PipelineKind.DEAL)
            current = self.object.pipeline.display_name
            context["pipeline_choices"] = [g for g in grouped if g[0] != current]
        return context


class DealDetailView(DealDetailMixin, StagedRecordDetailView):
    pass


class DealMoveView(DealDetailMixin, StageMoveView):
    pass


class DealChangePipelineView(DealDetailMixin, StageMoveView):
    """Move the deal into a stage of another deal pipeline (services.change_pipeline)."""

    def target_stage(self, stage_id):
        return (
            Stage.objects.select_related("pipeline")
            .filter(pk=stage_id, pipeline__kind=PipelineKind.DEAL, pipeline__is_active=True)
            .first()
        )

    def request_move(self, stage):
        return request_pipeline_change(
            deal=self.object, stage=stage, user=self.request.user, data=self.request.POST
        )

    def action_url(self) -> str:
        return reverse("deals:change_pipeline", args=[self.object.pk])


class DealLogActivityView(DealDetailMixin, LogActivityView):
    pass


class DealFormMixin:
    model = Deal
    form_class = DealForm
    template_name = "pipelines/deals/form.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["contact_options_url"] = reverse("deals:contact_options")
        return context


class DealCreateView(DealFormMixin, RecordCreateView):
    def get_initial(self):
        initial = super().get_initial()
        customer = id_param(self.request.GET, "customer")
        if customer:
            initial["customer"] = customer
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        customer = id_param(self.request.GET, "customer")
        context["cancel_url"] = self.safe_next(
            (self.customer_return(customer) if customer else None) or reverse("deals:list")
        )
        return context

    def form_valid(self, form):
        deal = form.instance
        self.object = deal
        return self.save_through(
            form,
            lambda: services.create_deal(deal=deal, by=self.request.user),
            message=_("Deal “%(title)s” created.") % {"title": deal.title},
            success_url=lambda: reverse("deals:detail", args=[deal.pk]),
        )


class DealUpdateView(DealFormMixin, RecordUpdateView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("deals:detail", args=[self.object.pk])
        return context

    def form_valid(self, form):
        deal = form.instance
        return self.save_through(
            form,
            lambda: services.update_deal(deal=deal, by=self.request.user),
            message=_("Changes saved."),
            success_url=reverse("deals:detail", args=[deal.pk]),
        )


@login_required
@require_GET
def contact_options(request):
    """The contact picker's options for the chosen customer (htmx, on the deal form)."""
    user = request.user
    if not (
        access.has_permission(user, "deal", "add") or access.has_permission(user, "deal", "change")
    ):
        raise PermissionDenied
    contacts = contacts_of(user, request.GET.get("customer", ""))
    return render(request, "pipelines/deals/_contact_options.html", {"contacts": contacts})
