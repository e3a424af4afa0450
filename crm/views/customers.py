"""Customer pages: the list (filters, saved views, bulk actions)."""

from django.contrib import messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access
from accounts.models import User

from ..filters import CustomerFilter
from ..models import Customer, Tag
from ..services import customers as services
from .base import BuiltinView, BulkAction, RecordListView


def transfer(queryset, user, request):
    target = access.users_in_scope(user).filter(pk=request.POST.get("to_owner") or 0).first()
    if target is None:
        return messages.ERROR, _("Choose the new owner.")
    count = services.transfer_customers(customers=queryset, to=target, by=user)
    return _("%(count)s customers transferred to %(name)s.") % {"count": count, "name": target}


def add_tag(queryset, user, request):
    name = (request.POST.get("tag") or "").strip()[:50]
    if not name:
        return messages.ERROR, _("Choose or type a tag.")
    tag, _created = Tag.objects.get_or_create(name=name)
    count = services.tag_customers(customers=queryset, tag=tag, by=user)
    return _("Tagged %(count)s customers “%(tag)s”.") % {"count": count, "tag": tag}


def release(queryset, user, request):
    count = services.release_customers(
        customers=queryset, by=user, reason=request.POST.get("reason", "")
    )
    return _("%(count)s customers returned to the public pool.") % {"count": count}


def claim(queryset, user, request):
    claimed, refusal = 0, None
    for customer in queryset.filter(owner__isnull=True):
        try:
            services.claim_customer(customer_id=customer.pk, by=user)
            claimed += 1
        except services.PoolError as exc:
            refusal = str(exc)
            break
    text = _("%(count)s customers claimed from the public pool.") % {"count": claimed}
    return (messages.WARNING, f"{text} {refusal}") if refusal else text


class CustomerListView(RecordListView):
    model = Customer
    filterset_class = CustomerFilter
    template_name = "crm/customers/list.html"
    select_related = ("owner", "level", "type", "source")
    prefetch_related = ("tags",)
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
        context["owners"] = (
            access.users_in_scope(self.request.user).order_by("name", "username")
            if context["bulk_actions"]
            else User.objects.none()
        )
        context["tags"] = Tag.objects.all()
        return context
