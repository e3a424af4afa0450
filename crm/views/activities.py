"""The activities list (/activities/): follow-ups logged by the people the user sees or on
the customers they see (Activity.objects.visible_to), filtered by who, department, kind,
date and customer. The activity report's counts drill down here."""

from django.utils.translation import gettext_lazy as _

from ..filters import ActivityFilter
from ..models import Activity
from .base import BuiltinView, RecordListView


class ActivityListView(RecordListView):
    model = Activity
    filterset_class = ActivityFilter
    template_name = "crm/activities/list.html"
    select_related = ("customer", "author")
    dictionary_fields = ("kind",)
    sort_fields = {"occurred": "occurred_at"}
    default_sort = "-occurred"
    builtin_views = (
        BuiltinView("mine", _("Mine"), "author=me"),
        BuiltinView("team", _("My team"), "author=team"),
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Activities are logged on a customer, lead or deal page, not from this list.
        context["can_add"] = False
        return context
