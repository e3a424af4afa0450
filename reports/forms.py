"""The filters every report offers: period, owner, department, pipeline. Choices are
limited to what the viewer may see (people and departments of their data scope)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.models import DataScope, Department
from crm import dates
from crm.filters import people_in_scope
from crm.widgets import style
from pipelines.models import Pipeline

from . import periods

# A report's own settings are small counts (days without follow-up, …): a bound keeps a
# typed 10**30 from reaching a timedelta.
MAX_SETTING = 10_000


class ReportFilterForm(forms.Form):
    period = forms.ChoiceField(
        label=_("Period"), choices=periods.CHOICES, required=False, initial=periods.DEFAULT
    )
    first = dates.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    last = dates.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None)
    department = forms.TypedChoiceField(
        label=_("Department"), required=False, coerce=int, empty_value=None
    )
    pipeline = forms.TypedChoiceField(
        label=_("Pipeline"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args, request, report, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound and self.data.get("period") not in dict(periods.CHOICES):
            # No period asked for (or one that does not exist): the figures are for the
            # default one, and the form says so; "Apply" then keeps it.
            self.data = self.data.copy()
            self.data["period"] = periods.DEFAULT
        user = request.user
        self.people = {u.pk: u for u in people_in_scope(request)}
        self.fields["owner"].choices = [("", _("Everyone I may see"))] + [
            (u.pk, u.get_full_name() or u.get_username()) for u in self.people.values()
        ]
        if access.data_scope(user) == DataScope.OWN:
            del self.fields["department"]
            self.departments = {}
        else:
            tree = Department.objects.tree_map()
            if access.data_scope(user) != DataScope.ALL:
                allowed = access.scope_department_ids(user)
                tree = {pk: d for pk, d in tree.items() if pk in allowed}
            self.departments = tree
            named = sorted(((d.pk, d.path_display) for d in tree.values()), key=lambda p: p[1])
            self.fields["department"].choices = [("", _("All")), *named]
        if report.uses_pipeline:
            self.pipelines = {
                p.pk: p for p in Pipeline.objects.filter(kind=report.pipeline_kind, is_active=True)
            }
            self.fields["pipeline"].choices = [("", _("All pipelines"))] + [
                (p.pk, p.display_name) for p in self.pipelines.values()
            ]
        else:
            del self.fields["pipeline"]
            self.pipelines = {}
        for name, label, default, minimum in report.extra_fields:
            self.fields[name] = forms.IntegerField(
                label=label,
                required=False,
                min_value=minimum,
                max_value=MAX_SETTING,
                initial=default,
            )
        self.report = report
        style(self, mark_errors=False)

    def clean(self):
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if data.get("period") == "custom":
            if not first or not last:
                self.add_error("first", _("Give both dates of the custom period."))
            elif first > last:
                self.add_error("last", _("The end date must not be before the start date."))
        return data

    def _valid_data(self) -> dict:
        """The values that passed validation: a wrong owner does not undo the period."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return self.cleaned_data

    def get_period(self) -> periods.Period:
        data = self._valid_data()
        return periods.period_for(
            data.get("period") or periods.DEFAULT, first=data.get("first"), last=data.get("last")
        )

    def chosen(self, name: str, options: dict):
        return options.get(self._valid_data().get(name))

    def params(self) -> dict:
        """The report's own settings, each its default unless a valid value was given."""
        data = self._valid_data()
        return {
            name: data.get(name) if data.get(name) is not None else default
            for name, _label, default, _minimum in self.report.extra_fields
        }
