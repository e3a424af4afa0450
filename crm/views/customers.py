"""Customer pages: the list (filters, saved views, bulk actions), create and edit with the
duplicate warning, the detail page (timeline, contacts, tasks, history), the public pool
(claim, release), transfer and merge. Every record comes through the access module."""

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView

from accounts import access
from accounts.phones import format_phone

from .. import record_cards, selectors
from ..fields import values as field_values
from ..filters import CustomerFilter, dictionary_items, people_in_scope, tag_list
from ..forms import ACTIVITY_KINDS, CUSTOMER_DICTIONARIES, ActivityForm, CustomerForm
from ..history_entries import history_entries
from ..models import (
    Activity,
    Contact,
    Customer,
    Tag,
    Task,
    TaskStatus,
)
from ..params import page_param, parse_id
from ..services import activities as activity_services
from ..services import customers as services
from ..widgets import speed_up_selects
from .base import (
    BuiltinView,
    BulkAction,
    RecordCreateView,
    RecordDetailView,
    RecordListView,
    RecordUpdateView,
)
from .bulk import Tally
from .rows import CustomerRows

# Why a bulk action left a customer of the public pool alone.
IN_POOL = gettext_lazy("in the public pool: claim them first")


def transfer(queryset, user, request):
    target = access.users_in_scope(user).filter(pk=parse_id(request.POST.get("to_owner"))).first()
    if target is None:
        return messages.ERROR, _("Choose the new owner.")
    tally = Tally(request, queryset)
    editable = queryset.editable_by(user)
    tally.add_not_editable(queryset, editable, unowned=IN_POOL)
    tally.add(_("already %(name)s's") % {"name": target}, editable.filter(owner=target).count())
    count = services.transfer_customers(customers=queryset, to=target, by=user)
    return tally.message(
        count,
        done_text=_("%(count)s customers transferred to %(name)s.")
        % {"count": count, "name": target},
        not_done=pgettext("customers", "%(count)s not transferred"),
    )


def add_tag(queryset, user, request):
    name = (request.POST.get("tag") or "").strip()
    if not name:
        return messages.ERROR, _("Choose or type a tag.")
    try:
        (tag,) = services.resolve_tags([name])
    except ValidationError as exc:
        return messages.ERROR, " ".join(exc.messages)
    tally = Tally(request, queryset)
    editable = queryset.editable_by(user)
    tally.add_not_editable(queryset, editable, unowned=IN_POOL)
    tally.add(_("tagged already"), editable.filter(tags=tag).count())
    count = services.tag_customers(customers=queryset, tag=tag, by=user)
    return tally.message(
        count,
        done_text=_("Tagged %(count)s customers “%(tag)s”.") % {"count": count, "tag": tag},
        not_done=pgettext("customers", "%(count)s not tagged"),
    )


def release(queryset, user, request):
    tally = Tally(request, queryset)
    owned = queryset.filter(owner__isnull=False)
    tally.add(_("in the public pool already"), tally.visible - owned.count())
    tally.add_not_editable(owned, owned.editable_by(user))
    try:
        count = services.release_customers(
            customers=queryset, by=user, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        return messages.ERROR, " ".join(exc.messages)
    return tally.message(
        count,
        done_text=_("%(count)s customers returned to the public pool.") % {"count": count},
        not_done=pgettext("customers", "%(count)s not returned"),
    )


def claim(queryset, user, request):
    tally = Tally(request, queryset)
    pool = list(queryset.filter(owner__isnull=True).values_list("pk", flat=True))
    tally.add(_("not in the public pool"), tally.visible - len(pool))
    claimed = 0
    for index, customer_id in enumerate(pool):
        try:
            services.claim_customer(customer_id=customer_id, by=user)
            claimed += 1
        except services.PoolError as exc:
            if Customer.objects.filter(pk=customer_id, owner__isnull=False).exists():
                continue  # someone else claimed it first: counted as changed meanwhile
            # Over the role's limit: the rest are refused for the same reason.
            limit = request.user.role.max_customers if request.user.role_id else None
            reason = (
                _("over your role's limit of %(limit)s customers") % {"limit": limit}
                if limit is not None
                else str(exc).rstrip("。.")
            )
            tally.add(reason, len(pool) - index)
            break
    return tally.message(
        claimed,
        done_text=_("%(count)s customers claimed from the public pool.") % {"count": claimed},
        not_done=pgettext("customers", "%(count)s not claimed"),
    )


class CustomerListView(RecordListView):
    model = Customer
    filterset_class = CustomerFilter
    template_name = "crm/customers/list.html"
    select_related = ("owner",)
    dictionary_fields = ("level", "type", "source")
    sort_fields = {
        "created": "created_at",
        "name": "name",
        "last_activity": "last_activity_at",
        "next_follow_up": "next_follow_up_at",
        "updated": "updated_at",
    }
    default_sort = "-created"
    builtin_views = (
        BuiltinView("mine", gettext_lazy("My customers"), "owner=me"),
        BuiltinView("due", gettext_lazy("Follow up today"), "owner=me&follow_up=due"),
        BuiltinView("stale", gettext_lazy("No follow-up for 30+ days"), "owner=me&stale=30"),
        BuiltinView("pool", gettext_lazy("Public pool"), "owner=pool"),
    )
    bulk_actions = (
        BulkAction("transfer", gettext_lazy("Transfer to…"), transfer),
        BulkAction("tag", gettext_lazy("Add tag…"), add_tag),
        BulkAction("release", gettext_lazy("Return to public pool"), release),
        BulkAction("claim", gettext_lazy("Claim from public pool"), claim),
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["owners"] = people_in_scope(self.request) if context["bulk_actions"] else []
        context["tags"] = tag_list(self.request)
        rows = context["object_list"]
        context["rows"] = CustomerRows(
            hidden=self.hidden_fields,
            bulk=bool(context["bulk_actions"]),
            custom=bool(self.custom_columns),
            tags=self.tags_of(rows) if "tags" not in self.hidden_fields else {},
        )(rows)
        return context

    def tags_of(self, rows) -> dict[int, list[Tag]]:
        """Each row's tags by name, from the request's one load of the tags and the rows'
        links: a prefetch would join the tags again and build a queryset per row (10 ms
        at 100 rows)."""
        if not rows:
            return {}
        linked: dict[int, set[int]] = {}
        for customer_id, tag_id in Customer.tags.through.objects.filter(
            customer_id__in=[row.pk for row in rows]
        ).values_list("customer_id", "tag_id"):
            linked.setdefault(customer_id, set()).add(tag_id)
        # In the tags' order (by name); a tag made since the list was loaded waits for
        # the next page load.
        return {
            customer_id: [tag for tag in tag_list(self.request) if tag.pk in tag_ids]
            for customer_id, tag_ids in linked.items()
        }


# --- Create, edit, duplicates ---------------------------------------------------------

TIMELINE_PAGE = 20
# What the timeline shows of an activity.
TIMELINE_COLUMNS = (
    "customer_id",
    "kind_id",
    "content",
    "occurred_at",
    "next_follow_up_at",
    "author__username",
    "author__name",
    "contact__name",
)
HISTORY_PAGE = 30
MERGE_CANDIDATES = 20


@login_required
def duplicates(request):
    """The duplicate warning while a customer or contact is typed (htmx partial)."""
    user = request.user
    if not (
        access.has_permission(user, "customer", "add")
        or access.has_permission(user, "contact", "add")
        or access.has_permission(user, "customer", "change")
        or access.has_permission(user, "contact", "change")
    ):
        raise PermissionDenied
    params = request.GET
    name = params.get("name", "")[:200]
    email = params.get("email", "")[:254]
    phones = [p[:40] for p in (*params.getlist("phone"), *params.getlist("mobile")) if p.strip()]
    found = []
    if name.strip() or email.strip() or phones:
        found = services.find_duplicates(
            user=user,
            name=name,
            phones=phones[:4],
            email=email,
            exclude_customer=parse_id(params.get("exclude_customer")),
            exclude_contact=parse_id(params.get("exclude_contact")),
            similar=True,
        )
    return render(request, "crm/partials/duplicates.html", {"duplicates": found, "framed": True})


class CustomerFormMixin:
    model = Customer
    form_class = CustomerForm
    template_name = "crm/customers/form.html"


class CustomerCreateView(CustomerFormMixin, RecordCreateView):
    def form_valid(self, form):
        customer = form.save(commit=False)
        found = services.find_duplicates(
            user=self.request.user,
            name=customer.name,
            phones=[customer.phone],
            email=customer.email,
            similar=True,
        )
        if found and not form.cleaned_data.get("confirm_duplicate"):
            # Nothing is saved until the user says this is really a different customer.
            return self.render_to_response(
                self.get_context_data(form=form, duplicates=found, confirm_needed=True)
            )
        return self.save_through(
            form,
            lambda: services.create_customer(
                customer=customer, by=self.request.user, tags=form.chosen_tags()
            ),
            message=_("Customer “%(name)s” created.") % {"name": customer.name},
            success_url=lambda: reverse("customers:detail", args=[customer.pk]),
        )


class CustomerUpdateView(CustomerFormMixin, RecordUpdateView):
    def form_valid(self, form):
        customer = form.save(commit=False)
        return self.save_through(
            form,
            lambda: services.update_customer(
                customer=customer, by=self.request.user, tags=form.chosen_tags()
            ),
            message=_("Changes saved."),
            success_url=reverse("customers:detail", args=[customer.pk]),
        )


# --- Detail: header, facts, contacts, tasks, timeline, history -------------------------


def timeline_page(request, customer: Customer, page: int = 1) -> dict:
    """One page of the activities of the customer and its contacts: one query. The kinds
    come from the request's one load of the dictionary items, not a join; of the author
    and the contact only the names the timeline shows are read."""
    start = (page - 1) * TIMELINE_PAGE
    rows = list(
        selectors.timeline(request.user, customer).only(*TIMELINE_COLUMNS)[
            start : start + TIMELINE_PAGE + 1
        ]
    )
    items = dictionary_items(request)
    for activity in rows:
        if activity.kind_id in items:
            activity.kind = items[activity.kind_id]
    return {
        "activities": rows[:TIMELINE_PAGE],
        "timeline_next": page + 1 if len(rows) > TIMELINE_PAGE else None,
    }


def history_page(customer: Customer, user, page: int = 1) -> dict:
    """One page of the customer's history: only rows about records the user may see
    (filtered in the query, so a page is full when there are enough)."""
    start = (page - 1) * HISTORY_PAGE
    rows = list(selectors.customer_history(user, customer)[start : start + HISTORY_PAGE + 1])
    return {
        "history": history_entries(rows[:HISTORY_PAGE], user),
        "history_next": page + 1 if len(rows) > HISTORY_PAGE else None,
    }


class CustomerRecordMixin:
    """The customer of the URL: 404 outside the user's scope."""

    model = Customer
    context_object_name = "customer"

    def get_queryset(self):
        # Dictionary items come from the request's one load (see get_object): four more
        # joins would cost PostgreSQL more time planning than reading.
        return Customer.objects.select_related("owner", "owner__department", "created_by")

    def get_object(self, queryset=None):
        customer = super().get_object(queryset)
        items = dictionary_items(self.request)
        for name in CUSTOMER_DICTIONARIES:
            item_id = getattr(customer, f"{name}_id")
            if item_id in items:
                setattr(customer, name, items[item_id])
        return customer


class CustomerDetailView(CustomerRecordMixin, RecordDetailView):
    template_name = "crm/customers/detail.html"

    def activity_kinds(self) -> list:
        """The active follow-up kinds in their order, from the request's one load of the
        dictionary items (what ActivityForm would query)."""
        return [
            item
            for item in dictionary_items(self.request).values()
            if item.dictionary.code == ACTIVITY_KINDS and item.is_active
        ]

    def get_context_data(self, activity_form=None, partial=False, **kwargs):
        """`partial`: for _activity_response.html (after a follow-up is logged), which
        shows neither the other apps' cards nor the tags: two to three queries fewer."""
        # Not super(): the base view checks change and delete with a query each.
        context = {"object": self.object, "customer": self.object, "view": self, **kwargs}
        user, customer = self.request.user, self.object
        can_change = access.can(user, customer, "change")
        contacts = list(
            Contact.objects.visible_to(user)
            .filter(customer=customer)
            .order_by("-is_primary", "name", "pk")
        )
        tasks = list(selectors.open_tasks_about(user, customer))
        editable_tasks = (
            set(
                Task.objects.editable_by(user)
                .filter(pk__in=[t.pk for t in tasks])
                .values_list("pk", flat=True)
            )
            if tasks
            else set()
        )
        for task in tasks:
            task.can_complete = task.pk in editable_tasks
        can_log = access.has_permission(user, "activity", "add")
        if can_log and activity_form is None:
            activity_form = ActivityForm(
                customer=customer, user=user, contacts=contacts, kinds=self.activity_kinds()
            )
        if activity_form is not None:
            speed_up_selects(activity_form)  # the contact picker, without a template per option
        # Whether anyone else may take the customer over; the picker itself loads when
        # the transfer dialog opens (transfer_owners_view).
        can_transfer = can_change and access.anyone_in_scope_but(user, customer.owner_id)
        if not partial:
            context.update(
                # Cards of other apps (pipelines: the customer's deals), crm/record_cards.py.
                record_cards=record_cards.cards_for(user, customer),
                tags=list(customer.tags.all()),
            )
        context.update(
            contacts=contacts,
            tasks=tasks,
            activity_form=activity_form,
            can_log=can_log,
            can_change=can_change,
            can_claim=customer.in_pool and access.has_permission(user, "customer", "change"),
            can_release=can_change and not customer.in_pool,
            can_transfer=can_transfer,
            can_merge=can_change and access.has_permission(user, "customer", "delete"),
            can_add_contact=can_change and access.has_permission(user, "contact", "add"),
            **timeline_page(self.request, customer),
        )
        return context


class CustomerTimelineView(CustomerRecordMixin, RecordDetailView):
    """More of the timeline ("show more"), as a partial."""

    template_name = "crm/customers/_timeline_items.html"

    def get_context_data(self, **kwargs):
        return {
            "customer": self.object,
            **timeline_page(self.request, self.object, page_param(self.request.GET)),
        }


class CustomerHistoryView(CustomerRecordMixin, RecordDetailView):
    """The change history, a page at a time, as a partial: the detail page loads it when
    its History tab is first opened (most visits never look at it)."""

    template_name = "crm/customers/_history_items.html"

    def get_context_data(self, **kwargs):
        page = page_param(self.request.GET)
        return {
            "customer": self.object,
            "first_page": page == 1,
            **history_page(self.object, self.request.user, page),
        }


class CustomerLogActivityView(CustomerDetailView):
    """POST a follow-up. With htmx the response is the refreshed follow-up section (and,
    out of band, the tasks and key facts it changed); without, a redirect back."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.object = customer = self.get_object()
        user = request.user
        if not access.has_permission(user, "activity", "add"):
            raise PermissionDenied
        form = ActivityForm(request.POST, customer=customer, user=user)
        if form.is_valid():
            data = form.cleaned_data
            activity_services.log_activity(
                customer=customer,
                by=user,
                kind=data["kind"],
                content=data["content"],
                occurred_at=data["occurred_at"],
                contact=data.get("contact"),
                next_follow_up_at=data.get("next_follow_up_at"),
            )
            if not request.htmx:
                messages.success(request, _("Follow-up logged."))
                return redirect("customers:detail", customer.pk)
            self.object = self.get_object()
            context = self.get_context_data(logged=True, partial=True)
            return render(request, "crm/customers/_activity_response.html", context)
        if request.htmx:
            context = self.get_context_data(activity_form=form, partial=True)
            return render(request, "crm/customers/_activity_response.html", context)
        return self.render_to_response(self.get_context_data(activity_form=form))


# --- The public pool and transfers ----------------------------------------------------


def _visible_customer(request, pk: int) -> Customer:
    return access.get_object_for_user_or_404(
        request.user, Customer.objects.select_related("owner"), pk=pk
    )


@login_required
@require_POST
def claim_view(request, pk):
    customer = _visible_customer(request, pk)
    try:
        services.claim_customer(customer_id=customer.pk, by=request.user)
    except services.PoolError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("“%(name)s” is now your customer.") % {"name": customer.name})
    return redirect("customers:detail", customer.pk)


@login_required
@require_POST
def release_view(request, pk):
    customer = _visible_customer(request, pk)
    if not access.can(request.user, customer, "change"):
        raise PermissionDenied
    if customer.in_pool:
        messages.info(request, _("This customer is already in the public pool."))
        return redirect("customers:detail", customer.pk)
    try:
        services.release_customers(
            customers=Customer.objects.filter(pk=customer.pk),
            by=request.user,
            reason=request.POST.get("reason") or "",
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("customers:detail", customer.pk)
    messages.success(
        request, _("“%(name)s” was returned to the public pool.") % {"name": customer.name}
    )
    return redirect("customers:detail", customer.pk)


def _transfer_owners(user, customer: Customer) -> list:
    """Who may take the customer over: people in the user's scope but its owner."""
    return [
        person
        for person in access.users_in_scope(user).order_by("name", "username")
        if person.pk != customer.owner_id
    ]


@login_required
@require_GET
def transfer_owners_view(request, pk):
    """The transfer dialog's owner picker (htmx partial), loaded when the dialog opens
    rather than with every visit of the detail page. Same rights as the transfer."""
    customer = _visible_customer(request, pk)
    if not access.can(request.user, customer, "change"):
        raise PermissionDenied
    owners = _transfer_owners(request.user, customer)
    return render(request, "crm/customers/_transfer_owners.html", {"owners": owners})


@login_required
@require_POST
def transfer_view(request, pk):
    customer = _visible_customer(request, pk)
    user = request.user
    if not access.can(user, customer, "change"):
        raise PermissionDenied
    target = access.users_in_scope(user).filter(pk=parse_id(request.POST.get("to_owner"))).first()
    if target is None:
        messages.error(request, _("Choose the new owner."))
        return redirect("customers:detail", customer.pk)
    if target.pk == customer.owner_id:
        messages.info(request, _("%(name)s already owns this customer.") % {"name": target})
        return redirect("customers:detail", customer.pk)
    services.transfer_customers(
        customers=Customer.objects.filter(pk=customer.pk), to=target, by=user
    )
    messages.success(
        request,
        _("“%(customer)s” transferred to %(name)s.") % {"customer": customer.name, "name": target},
    )
    customer.refresh_from_db(fields=["owner"])
    if not access.can(user, customer, "view"):
        return redirect("customers:list")
    return redirect("customers:detail", customer.pk)


# --- Merge ----------------------------------------------------------------------------


def _merge_value(customer: Customer, field: str) -> str:
    if field.startswith("cf_"):
        key = field.removeprefix("cf_")
        value = (customer.custom or {}).get(key)
        return field_values.history_display("customer", key, value) if value is not None else ""
    value = getattr(customer, field)
    if value in (None, ""):
        return ""
    if field == "phone":
        return format_phone(value)
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "Y-m-d H:i")
    return str(value)


class CustomerMergeView(LoginRequiredMixin, TemplateView):
    """Pick another customer, choose each field's value, fold it into this one."""

    template_name = "crm/customers/merge.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        user = request.user
        self.survivor = access.get_object_for_user_or_404(
            user,
            Customer.objects.select_related("owner", "type", "source", "level", "industry"),
            pk=kwargs["pk"],
        )
        if not access.can(user, self.survivor, "change"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def mergeable(self):
        """Customers this user may fold into the survivor: may change and delete them."""
        user = self.request.user
        return (
            Customer.objects.editable_by(user)
            .filter(pk__in=Customer.objects.deletable_by(user).values("pk"))
            .exclude(pk=self.survivor.pk)
        )

    def get_other(self, pk) -> Customer | None:
        pk = parse_id(pk)
        if pk is None:
            return None
        return get_object_or_404(
            self.mergeable().select_related("owner", "type", "source", "level", "industry"),
            pk=pk,
        )

    def candidates(self, q: str):
        queryset = self.mergeable().select_related("owner")
        q = q.strip()
        if q:
            condition = Q(name__icontains=q) | Q(email__icontains=q)
            digits = "".join(ch for ch in q if ch.isdigit())
            if len(digits) >= 4:
                condition |= Q(phone__contains=digits)
            queryset = queryset.filter(condition)
        else:
            # Without a search, suggest look-alikes: same name, phone or email.
            similar = Q(name__iexact=self.survivor.name)
            if self.survivor.phone:
                similar |= Q(phone=self.survivor.phone)
            if self.survivor.email:
                similar |= Q(email__iexact=self.survivor.email)
            queryset = queryset.filter(similar)
        return list(queryset.order_by("name", "pk")[:MERGE_CANDIDATES])

    def rows(self, other: Customer, picked: dict[str, int] | None = None) -> list[dict]:
        survivor = self.survivor
        rows = []
        for field, label in services.mergeable_fields(self.request.user):
            mine, theirs = _merge_value(survivor, field), _merge_value(other, field)
            default = other.pk if (not mine and theirs) else survivor.pk
            rows.append(
                {
                    "field": field,
                    "label": label,
                    "mine": mine,
                    "theirs": theirs,
                    "same": mine == theirs,
                    "take": (picked or {}).get(field, default),
                }
            )
        return rows

    def counts(self, customer: Customer) -> dict[str, int]:
        return {
            "contacts": Contact.objects.filter(customer=customer).count(),
            "activities": Activity.objects.filter(customer=customer).count(),
            "tasks": Task.objects.filter(customer=customer, status=TaskStatus.OPEN).count(),
        }

    def get_context_data(self, other=None, picked=None, **kwargs):
        context = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "")[:100]
        user = self.request.user
        context.update(
            customer=self.survivor,
            survivor=self.survivor,
            other=other,
            q=q,
            may_delete=access.has_permission(user, "customer", "delete"),
        )
        if other is None:
            context["candidates"] = self.candidates(q) if context["may_delete"] else []
        else:
            context.update(
                rows=self.rows(other, picked),
                moving=self.counts(other),
                # What other apps move too (pipelines: "3 deals move").
                moving_more=services.merge_notes(other),
                other_tags=list(other.tags.all()),
            )
        return context

    def get(self, request, *args, **kwargs):
        other = self.get_other(request.GET.get("other"))
        return self.render_to_response(self.get_context_data(other=other))

    def post(self, request, *args, **kwargs):
        other = self.get_other(request.POST.get("other"))
        if other is None:
            messages.error(request, _("Choose the customer to merge into this one."))
            return redirect("customers:merge", self.survivor.pk)
        allowed = {self.survivor.pk, other.pk}
        take = {}
        for field, _label in services.mergeable_fields(request.user):
            source = parse_id(request.POST.get(f"take_{field}"))
            take[field] = source if source in allowed else self.survivor.pk
        try:
            services.merge_customers(
                survivor=self.survivor, others=[other], by=request.user, take=take
            )
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, error)
            self.survivor.refresh_from_db()
            return self.render_to_response(self.get_context_data(other=other, picked=take))
        messages.success(
            request,
            _("“%(other)s” was merged into “%(name)s”.")
            % {"other": other.name, "name": self.survivor.name},
        )
        return redirect("customers:detail", self.survivor.pk)
