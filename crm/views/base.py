"""Base views that enforce access, so each page view is a short declaration.

- RecordListView: visible records only, django-filter filters, sorting, pagination,
  saved views (built-in, own, shared) and bulk actions on the selected rows.
- RecordDetailView / RecordUpdateView / RecordDeleteView: the object comes from the
  access module: outside the user's scope it is a 404; visible but not changeable, 403.
- RecordCreateView: needs the role's "add" permission.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Q, QuerySet, Subquery
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from accounts import access
from accounts.actors import quiet
from accounts.models import User

from ..fields import query, schema
from ..filters import dictionary_items
from ..forms import style
from ..models import FieldType, SavedView
from ..params import ids_param, int_param, page_param, parse_id
from ..services.search import clean_query
from ..widgets import speed_up_selects

PAGE_SIZES = (25, 50, 100)
# Asks a list for its filter form only (loaded when the filter panel first opens).
FILTERS_FORM_PARAM = "filters_form"
# Query parameters that are not filters: left out of saved views and active-view matching.
NON_FILTER_PARAMS = {"page", "per_page", FILTERS_FORM_PARAM}


@dataclass(frozen=True)
class BuiltinView:
    key: str
    label: str
    query: str


@dataclass(frozen=True)
class BulkAction:
    """An action on the selected rows. `run(queryset, user, request)` returns a message;
    the queryset holds only rows the user can see, the service keeps those it may change.
    `user` fires automation rules only when the form's "run automation" box is ticked
    (otherwise it is `accounts.actors.quiet(request.user)`)."""

    key: str
    label: str
    run: Callable
    permission: str = "change"
    confirm: str = ""


class RecordMixin(LoginRequiredMixin):
    model = None

    @property
    def record_type(self) -> str:
        return self.model.record_type

    def require(self, action: str) -> None:
        if not access.has_permission(self.request.user, self.record_type, action):
            raise PermissionDenied

    def visible(self):
        return self.model.objects.visible_to(self.request.user)

    def save_through(self, form, save: Callable[[], object], *, message: str, success_url):
        """Run the service that saves a valid form. A ValidationError it raises is shown
        on the form and nothing is saved; else a success message and the next page
        (`success_url` may be a callable, for a URL known only once saved)."""
        try:
            save()
        except ValidationError as exc:
            return self.save_error(form, exc)
        messages.success(self.request, message)
        url = success_url() if callable(success_url) else success_url
        return HttpResponseRedirect(self.safe_next(url))

    def save_error(self, form, exc: ValidationError):
        """Show a service's ValidationError on the form: under its field when the form
        has that field, at the top otherwise."""
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)
        return self.form_invalid(form)

    def customer_return(self, customer_id) -> str | None:
        """The customer's page when the form was opened from it (?customer=<pk>)."""
        if customer_id and self.request.GET.get("customer") == str(customer_id):
            return reverse("customers:detail", args=[customer_id])
        return None

    def safe_next(self, default: str) -> str:
        target = self.request.POST.get("next") or self.request.GET.get("next") or ""
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        ):
            return target
        return default


class RecordListView(RecordMixin, ListView):
    filterset_class = None
    # URL sort key -> ORM ordering; "-key" sorts descending.
    sort_fields: dict[str, str] = {}
    default_sort = "-created"
    # Count (up to the cap) along the default sort's index: right when the scope is on
    # the record's own row (owner_id), so the walk stops at the cap. A type scoped through
    # a join (contacts: their customer's owner) counts in any order instead, which
    # PostgreSQL does with a hash of the customers in scope rather than 10,000 probes.
    count_in_order = True
    builtin_views: tuple[BuiltinView, ...] = ()
    bulk_actions: tuple[BulkAction, ...] = ()
    select_related: tuple[str, ...] = ()
    prefetch_related: tuple[str, ...] = ()
    # Foreign keys to data-dictionary items (e.g. "level"): filled on the page's rows from
    # one load of all items per request instead of a join each, which PostgreSQL plans
    # and reads faster. Leave them out of select_related.
    dictionary_fields: tuple[str, ...] = ()
    paginate_by = PAGE_SIZES[0]
    # Whether the page links to the import of its record type (for roles that may import).
    importable = True

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.require("view")
        return super().dispatch(request, *args, **kwargs)

    # --- query ---------------------------------------------------------------------
    def filter_params(self) -> QueryDict:
        params = self.request.GET.copy()
        for key in NON_FILTER_PARAMS:
            params.pop(key, None)
        return params

    def filters_active(self) -> bool:
        """Whether the URL filters the list (a sort alone does not)."""
        return any(key != "sort" for key in self.filter_params())

    def get_queryset(self):
        queryset = self.visible()
        if self.filterset_class is not None:
            # Bound only when the URL filters: validating the whole filter form for a
            # page, a page size or a sort changes nothing and cost ~3 ms a list.
            self.filterset = self.filterset_class(
                self.request.GET if self.filters_active() else None,
                queryset=queryset,
                request=self.request,
            )
            queryset = self.filterset.qs if self.filterset.is_bound else queryset
        else:
            self.filterset = None
        return self.read(self.list_defaults(queryset))

    def read(self, queryset):
        """`queryset` in the list's order, with what a row shows of its relations."""
        queryset = queryset.order_by(*self.ordering_for(self.current_sort()))
        if self.select_related:
            queryset = queryset.select_related(*self.select_related)
        if self.prefetch_related:
            queryset = queryset.prefetch_related(*self.prefetch_related)
        return queryset

    def list_defaults(self, queryset):
        """What the list shows of what its filters leave open (the lead list: open leads
        unless a status is asked for); the export applies it too."""
        return queryset

    # --- fields: standard ones the user may see, custom list columns ------------------
    @cached_property
    def hidden_fields(self) -> frozenset[str]:
        return access.hidden_fields(self.request.user, self.record_type)

    @cached_property
    def custom_columns(self) -> list:
        """Active custom fields shown in lists that the user may see."""
        return [
            spec
            for spec in schema.custom_specs(self.request.user, self.record_type)
            if spec.custom.show_in_list
        ]

    @cached_property
    def allowed_sorts(self) -> dict[str, str]:
        """The sort keys over fields the user may see: sorting by a hidden field (a deal's
        amount) would reveal its order, so such a sort is ignored like an unknown one."""
        return {
            key: path
            for key, path in self.sort_fields.items()
            if path.split("__")[0] not in self.hidden_fields
        }

    def current_sort(self) -> str:
        sort = self.request.GET.get("sort", "")
        key = sort.lstrip("-")
        if key in self.allowed_sorts or any(spec.name == key for spec in self.custom_columns):
            return sort
        return self.default_sort

    def ordering_for(self, sort: str) -> list:
        descending = sort.startswith("-")
        for spec in self.custom_columns:
            if spec.name == sort.lstrip("-"):
                return [
                    query.order_by_field(spec.custom, descending),
                    "-pk" if descending else "pk",
                ]
        field = self.sort_fields[sort.lstrip("-")]
        # A unique last key keeps pages stable when many rows share a value.
        return [f"-{field}" if descending else field, "-pk" if descending else "pk"]

    def get_paginate_by(self, queryset):
        size = int_param(self.request.GET, "per_page", self.paginate_by)
        return size if size in PAGE_SIZES else self.paginate_by

    def paginate_queryset(self, queryset, page_size):
        number = page_param(self.request.GET)
        paginator = RecordPaginator(
            queryset,
            page_size,
            # The default sort has an index (the page query needs one): counting along it
            # reaches the count's limit without reading rows outside the scope. Not with a
            # quick search: its indexes find the matches, and counting them in the list's
            # order would sort every match of a common word (上海: 10,000) to count 2,001.
            ordered_count=self.count_in_order
            and self.current_sort() == self.default_sort
            and not clean_query(self.request.GET.get("q")),
            reader=self.read(self.model._default_manager.all()),
        )
        # An out-of-range page shows the last page rather than an error page.
        page = paginator.get_page(number)
        if self.dictionary_fields and page.object_list:
            items = dictionary_items(self.request)
            for row in page.object_list:
                for name in self.dictionary_fields:
                    item_id = getattr(row, f"{name}_id")
                    if item_id is not None and item_id in items:
                        setattr(row, name, items[item_id])
        if self.custom_columns and page.object_list:
            self.fill_custom_cells(page.object_list)
        return paginator, page, page.object_list, page.has_other_pages()

    def fill_custom_cells(self, rows) -> None:
        items = {
            (item.dictionary_id, item.code): item
            for item in dictionary_items(self.request).values()
        }
        users = {}
        user_keys = [
            spec.custom.key
            for spec in self.custom_columns
            if spec.custom.field_type == FieldType.USER
        ]
        if user_keys:
            ids = {(row.custom or {}).get(key) for row in rows for key in user_keys}
            ids = {pk for pk in ids if isinstance(pk, int)}
            users = {u.pk: u for u in User.objects.filter(pk__in=ids)} if ids else {}
        query.display_rows(rows, self.custom_columns, items_by_code=items, users=users)

    # --- saved views ---------------------------------------------------------------
    def saved_views(self):
        user = self.request.user
        return SavedView.objects.filter(
            Q(owner=user) | Q(shared=True), record_type=self.record_type
        ).select_related("owner")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.filter_params()
        current = params.urlencode()
        canonical = _canonical(current)
        saved = list(self.saved_views())
        context.update(
            filterset=self.filterset,
            sort=self.current_sort(),
            sort_fields=self.allowed_sorts,
            page_sizes=PAGE_SIZES,
            query=current,
            query_without_sort=_without(params, "sort"),
            builtin_views=[
                (view, _canonical(view.query) == canonical) for view in self.builtin_views
            ],
            saved_views=[(view, _canonical(view.query) == canonical) for view in saved],
            bulk_actions=[
                a
                for a in self.bulk_actions
                if access.has_permission(self.request.user, self.record_type, a.permission)
            ],
            can_add=access.has_permission(self.request.user, self.record_type, "add"),
            can_export=access.has_permission(self.request.user, self.record_type, "export"),
            can_import=self.importable
            and access.has_permission(self.request.user, self.record_type, "import"),
            record_type=self.record_type,
            hidden_fields=self.hidden_fields,
            custom_columns=self.custom_columns,
            filters_active=self.filters_active(),
        )
        # The filter panel's form loads when first opened (htmx): rendering its pickers
        # costs more than the list itself. Only a form with errors comes with the page.
        filterset = self.filterset
        context["lazy_filters"] = not (
            filterset is not None and filterset.is_bound and filterset.errors
        )
        if filterset is not None:
            # Built (fields copied, choices set) only when it is rendered.
            if not context["lazy_filters"] or FILTERS_FORM_PARAM in self.request.GET:
                speed_up_selects(style(filterset.form))
            search = filterset.base_filters.get("q")
            widget = search.extra.get("widget") if search is not None else None
            context["search_placeholder"] = widget.attrs.get("placeholder", "") if widget else ""
        return context

    def render_to_response(self, context, **response_kwargs):
        if FILTERS_FORM_PARAM in self.request.GET:
            return TemplateResponse(self.request, "crm/partials/filter_form.html", context)
        return super().render_to_response(context, **response_kwargs)

    # --- bulk actions and saving views ---------------------------------------------
    def post(self, request, *args, **kwargs):
        # Back to the list as it was: its query re-encoded, never copied into the header.
        query = QueryDict(request.POST.get("query", "")).urlencode()
        back = request.path + (f"?{query}" if query else "")
        if "save_view" in request.POST:
            self.save_view(request)
            return HttpResponseRedirect(back)
        if "delete_view" in request.POST:
            view = get_object_or_404(
                SavedView,
                pk=parse_id(request.POST["delete_view"]),
                owner=request.user,
                record_type=self.record_type,
            )
            view.delete()
            messages.success(request, _("The view “%(name)s” was deleted.") % {"name": view.name})
            return HttpResponseRedirect(request.path)
        actions = {a.key: a for a in self.bulk_actions}
        action = actions.get(request.POST.get("action", ""))
        if action is None:
            messages.error(request, _("Choose an action."))
            return HttpResponseRedirect(back)
        self.require(action.permission)
        ids = ids_param(request.POST, "selected")
        if not ids:
            messages.error(request, _("Select at least one row first."))
            return HttpResponseRedirect(back)
        selected = self.visible().filter(pk__in=ids)
        # Many records at once fire automation rules only when the user opts in.
        by = request.user if request.POST.get("run_automation") else quiet(request.user)
        result = action.run(selected, by, request)
        if result:
            level, text = result if isinstance(result, tuple) else (messages.SUCCESS, result)
            messages.add_message(request, level, text)
        return HttpResponseRedirect(back)

    def save_view(self, request) -> None:
        name = (request.POST.get("name") or "").strip()
        if not name:
            messages.error(request, _("Give the view a name."))
            return
        limit = SavedView._meta.get_field("name").max_length
        if len(name) > limit:
            messages.error(
                request,
                _("A view's name has %(limit)s characters at most.") % {"limit": limit},
            )
            return
        query = _canonical(request.POST.get("query", ""))
        if len(query) > SavedView._meta.get_field("query").max_length:
            messages.error(
                request, _("This view has too many filters to save. Remove some and try again.")
            )
            return
        shared = bool(request.POST.get("shared"))
        SavedView.objects.update_or_create(
            owner=request.user,
            record_type=self.record_type,
            name=name,
            defaults={"query": query, "shared": shared},
        )
        messages.success(request, _("Saved the view “%(name)s”.") % {"name": name})


class RecordPage(Page):
    """A page whose paginator may not know the total: it knows whether a next page exists
    because it read one row more than it shows."""

    def __init__(self, object_list, number, paginator, *, has_next: bool):
        super().__init__(object_list, number, paginator)
        self._has_next = has_next

    def has_next(self) -> bool:
        return self._has_next

    def end_index(self) -> int:
        return self.start_index() + len(self.object_list) - 1 if self.object_list else 0


class RecordPaginator(Paginator):
    """Pagination that costs about the same on page 1 and on page 500 of 100,000 rows.

    - The count stops at COUNT_LIMIT: a longer list says "2000+" (as Salesforce does)
      and no page load counts the whole scope. Past the limit, a page reads one row more
      than it shows to know whether another page follows.
    - A page's rows are picked by their ids (a subquery without joins: on PostgreSQL an
      index-only scan however deep the page), then read with their related objects.
    """

    COUNT_LIMIT = 2_000

    def __init__(self, object_list, per_page, *args, ordered_count=False, reader=None, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        # The page's rows by their ids: the list's order and relations without its
        # filters, which the id subquery has applied (in the same statement, so the
        # same snapshot). Read through the filtered list instead, PostgreSQL checks the
        # scope and the search again on the rows around the page: a rep's /tasks/ read
        # every task by the scope's OR, a common word's search ran twice.
        self.reader = reader
        # Count along the list's order (when an index serves it, the count stops after
        # COUNT_LIMIT rows in scope instead of filtering the whole table).
        self.ordered_count = ordered_count
        self.seen = 0  # rows up to the end of the page read, when the count is capped
        self.found_ids: list | None = None  # every match's id, when counted in any order

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return super().count
        if self.ordered_count:
            return self.object_list[: self.COUNT_LIMIT + 1].count()
        # In any order: the ids themselves (at most COUNT_LIMIT + 1), so that a page of a
        # list that is not capped picks its rows among them (_rows).
        self.found_ids = list(
            self.object_list.order_by().values_list("pk", flat=True)[: self.COUNT_LIMIT + 1]
        )
        return len(self.found_ids)

    @property
    def capped(self) -> bool:
        return self.count > self.COUNT_LIMIT

    @property
    def count_display(self) -> str:
        return f"{max(self.COUNT_LIMIT, self.seen)}+" if self.capped else str(self.count)

    @property
    def num_pages_display(self) -> str:
        if not self.capped:
            return str(self.num_pages)
        known = max(self.COUNT_LIMIT, self.seen + 1)
        return f"{(known + self.per_page - 1) // self.per_page}+"

    def validate_number(self, number):
        if not (isinstance(self.object_list, QuerySet) and self.capped):
            return super().validate_number(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from exc
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number  # whether it has rows, reading it tells

    def _rows(self, bottom: int, top: int) -> list:
        queryset = self.object_list
        if self.found_ids is not None and not self.capped:
            # Every match's id is known: sort those (at most COUNT_LIMIT) for the page.
            # Walking the list's order instead expects matches to be common; for a rare
            # word at a million customers it read the whole date index (3 s).
            return list(queryset.filter(pk__in=self.found_ids)[bottom:top])
        # One query: the rows whose ids the subquery picks for the page.
        reader = queryset if self.reader is None else self.reader
        return list(reader.filter(pk__in=Subquery(queryset.values("pk")[bottom:top])))

    def page(self, number):
        if not isinstance(self.object_list, QuerySet):
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if not self.capped:
            top = min(bottom + self.per_page, self.count)
            rows = self._rows(bottom, top) if top > bottom else []
            return self._get_page(rows, number, self)
        rows = self._rows(bottom, bottom + self.per_page + 1)
        if not rows and number > 1:
            # Past the end (a typed URL): count it all once and show the last page.
            total = self.object_list.order_by().count()
            return self.page(max(1, (total + self.per_page - 1) // self.per_page))
        has_next = len(rows) > self.per_page
        rows = rows[: self.per_page]
        self.seen = bottom + len(rows)
        return RecordPage(rows, number, self, has_next=has_next)


def _without(params: QueryDict, *keys: str) -> str:
    params = params.copy()
    for key in keys:
        params.pop(key, None)
    return params.urlencode()


def _canonical(query: str) -> str:
    """A query string with paging dropped and keys sorted, for comparing views."""
    params = QueryDict(query, mutable=True)
    for key in NON_FILTER_PARAMS:
        params.pop(key, None)
    pairs = sorted((k, v) for k in params for v in params.getlist(k) if v != "")
    return urlencode(pairs)


class RecordDetailView(RecordMixin, DetailView):
    context_object_name = "record"

    def get_object(self, queryset=None):
        return access.get_object_for_user_or_404(
            self.request.user,
            queryset if queryset is not None else self.get_queryset(),
            pk=self.kwargs["pk"],
        )

    def get_queryset(self):
        return self.model.objects.all()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user, record = self.request.user, self.object
        context.update(
            can_change=access.can(user, record, "change"),
            can_delete=access.can(user, record, "delete"),
        )
        return context


class RecordCreateView(RecordMixin, CreateView):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.require("add")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs


class RecordUpdateView(RecordMixin, UpdateView):
    def get_object(self, queryset=None):
        record = access.get_object_for_user_or_404(
            self.request.user, self.model.objects.all(), pk=self.kwargs["pk"]
        )
        if not access.can(self.request.user, record, "change"):
            raise PermissionDenied
        return record

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs
