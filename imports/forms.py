"""The import pages' forms: upload, and the mapping with the import's options."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.models import Department
from crm.forms import StyledFormMixin
from crm.widgets import style

from .models import DuplicateStrategy, ImportJob, OwnerMode
from .readers import Table
from .services import engine, jobs
from .specs import import_spec

IGNORE = ""


class UploadForm(StyledFormMixin, forms.Form):
    record_type = forms.ChoiceField(label=_("Import"))
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV (UTF-8, GBK, UTF-16) or Excel .xlsx, with a row of column headers."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["record_type"].choices = [
            (spec.record_type, spec.label) for spec in jobs.importable_types(user)
        ]
        self.fields["file"].widget.attrs["accept"] = ".csv,.xlsx,.txt"

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.CRM_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is %(size).1f MB; at most %(limit).1f MB can be imported at once.")
                % {"size": upload.size / 1024 / 1024, "limit": limit / 1024 / 1024}
            )
        return upload


class MappingForm(StyledFormMixin, forms.Form):
    """Each column's field, defaults for the fields no column fills, the owner, duplicates."""

    owner_mode = forms.ChoiceField(label=_("Owner of new records"), widget=forms.RadioSelect)
    owner = forms.ModelChoiceField(label=_("Person"), queryset=None, required=False)
    owner_department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.none(), required=False
    )
    duplicate_keys = forms.MultipleChoiceField(
        label=_("Match duplicates on"), required=False, widget=forms.CheckboxSelectMultiple
    )
    duplicate_strategy = forms.ChoiceField(
        label=_("When a row matches an existing record"),
        choices=DuplicateStrategy.choices,
        widget=forms.RadioSelect,
    )
    all_or_nothing = forms.BooleanField(
        label=_("All or nothing: import nothing if any row has an error"), required=False
    )
    create_missing_items = forms.BooleanField(
        label=_("Add the picklist options the file names that do not exist yet"), required=False
    )
    run_automation = forms.BooleanField(
        label=_("Run automation rules on the imported records"),
        help_text=_("Off: the imported records fire no rules (assignments, tasks, emails)."),
        required=False,
    )
    template_name = forms.CharField(label=_("Save this mapping as"), required=False, max_length=100)
    template_shared = forms.BooleanField(
        label=_("Shared with everyone who imports"), required=False
    )

    def __init__(self, *args, job: ImportJob, table: Table, user, **kwargs):
        self.job, self.table = job, table
        self.spec = import_spec(job.record_type)
        principal = engine.principal_for(job)
        self.targets = engine.targets_for(self.spec, principal)
        initial = {
            "owner_mode": job.owner_mode,
            "owner": job.owner_id,
            "owner_department": job.owner_department_id,
            "duplicate_keys": job.duplicate_keys,
            "duplicate_strategy": job.duplicate_strategy,
            "all_or_nothing": job.all_or_nothing,
            "create_missing_items": job.create_missing_items,
            "run_automation": job.run_automation,
        }
        super().__init__(*args, initial=initial, **kwargs)
        choices = [(IGNORE, _("— Do not import —"))] + [
            (t.name, t.label) for t in self.targets.values()
        ]
        self.columns = []
        for index, header in enumerate(table.headers):
            name = f"col_{index}"
            self.fields[name] = forms.ChoiceField(
                label=header or _("column %(number)d") % {"number": index + 1},
                choices=choices,
                required=False,
                initial=(job.mapping or {}).get(str(index), IGNORE),
            )
            samples = [row[index] for row in table.rows[:3] if index < len(row)]
            self.columns.append(
                (self[name], [engine.shown(job.record_type, "", v) for v in samples])
            )
        self.default_fields = []
        for target in self.targets.values():
            name = f"default_{target.name}"
            self.fields[name] = forms.CharField(
                label=target.label,
                required=False,
                max_length=500,
                initial=(job.defaults or {}).get(target.name, ""),
            )
            self.default_fields.append(self[name])
        modes = [(m, label) for m, label in OwnerMode.choices if m != OwnerMode.COLUMN]
        if not self.spec.pool:
            modes = [(m, label) for m, label in modes if m != OwnerMode.NONE]
        if self.spec.owner_field is None:
            for name in ("owner_mode", "owner", "owner_department"):
                del self.fields[name]
        else:
            self.fields["owner_mode"].choices = modes
            if job.owner_mode == OwnerMode.COLUMN:
                self.initial["owner_mode"] = OwnerMode.IMPORTER
            people = access.users_in_scope(principal).order_by("name", "username")
            self.fields["owner"].queryset = people
            self.fields["owner"].label_from_instance = lambda u: u.name or u.username
            self.fields["owner_department"].queryset = Department.objects.filter(
                pk__in=people.exclude(department=None).values("department_id")
            ).order_by("name")
        self.fields["duplicate_keys"].choices = engine.duplicate_key_choices(self.spec, principal)
        if not user.is_superuser:
            del self.fields["create_missing_items"]
        style(self, mark_errors=False)

    def mapping(self) -> dict[str, str]:
        return {
            str(index): self.cleaned_data[f"col_{index}"]
            for index in range(len(self.table.headers))
            if self.cleaned_data.get(f"col_{index}")
        }

    def clean(self):
        data = super().clean()
        mapped = [v for k, v in data.items() if k.startswith("col_") and v]
        for name in {n for n in mapped if mapped.count(n) > 1}:
            self.add_error(
                None,
                _("More than one column is mapped to “%(field)s”.")
                % {"field": self.targets[name].label},
            )
        mode = data.get("owner_mode")
        if mode == OwnerMode.FIXED and not data.get("owner"):
            self.add_error("owner", _("Choose the person who owns the new records."))
        if mode == OwnerMode.ROUND_ROBIN and not data.get("owner_department"):
            self.add_error("owner_department", _("Choose the department whose people take turns."))
        for key in data.get("duplicate_keys") or []:
            if key not in mapped:
                self.add_error(
                    "duplicate_keys",
                    _("“%(field)s” has no column in the file to match on.")
                    % {"field": self.targets[key].label},
                )
        return data

    def save(self) -> ImportJob:
        job, data = self.job, self.cleaned_data
        job.mapping = self.mapping()
        job.defaults = {
            t.name: data[f"default_{t.name}"].strip()
            for t in self.targets.values()
            if data.get(f"default_{t.name}", "").strip()
        }
        if self.spec.owner_field is not None:
            # A column naming the owner wins; this is for the rows where it is empty.
            job.owner_mode = data["owner_mode"]
            job.owner = data.get("owner")
            job.owner_department = data.get("owner_department")
        job.duplicate_keys = data.get("duplicate_keys") or []
        job.duplicate_strategy = data["duplicate_strategy"]
        job.all_or_nothing = data.get("all_or_nothing", False)
        job.create_missing_items = data.get("create_missing_items", False)
        job.run_automation = data.get("run_automation", False)
        job.save()
        return job
