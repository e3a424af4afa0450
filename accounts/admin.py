from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from . import access
from .forms import AdminSignInForm
from .models import Department, FieldAccess, Role, SecurityNotice, User
from .resources import UserResource
from .sheets import SheetAdminMixin

admin.site.login_form = AdminSignInForm
# Django's groups: roles (accounts.Role) say what people may do; nothing reads a group.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


def tree_sort_key(department: Department) -> list[tuple[int, str]]:
    return [(d.sort_order, d.name) for d in [*department.ancestors(), department]]


class MemberInline(admin.TabularInline):
    model = User
    fields = ("username", "name", "role", "is_active")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("member")
    verbose_name_plural = _("members")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("tree_path", "parent", "sort_order", "member_count")
    list_filter = ("parent",)
    search_fields = ("name",)
    ordering = ("sort_order", "name")
    inlines = [MemberInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members"))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # Resolve every row's ancestors from one query instead of one per level, and
        # show the rows in tree order unless the admin sorted by a column.
        tree = Department.objects.tree_map()
        rows = changelist.result_list
        for department in rows:
            if department.parent_id in tree:
                department.parent = tree[department.parent_id]
        if "o" not in request.GET:
            changelist.result_list = sorted(rows, key=tree_sort_key)
        return changelist

    @admin.display(description=_("department"), ordering="name")
    def tree_path(self, obj):
        return obj.path_display

    @admin.display(description=_("members"), ordering="_members")
    def member_count(self, obj):
        return obj._members


def field_permission_key(record_type: str, name: str) -> str:
    return f"fp__{record_type}__{name}"


# The grid's column headings in the app's words: its pages "Edit" (编辑) a record.
GRID_LABELS = {"change": _("Edit")}


class PermissionGrid(forms.CheckboxSelectMultiple):
    """The role's permissions as a grid: a row per record type, a column per action
    (access.ACTIONS), with a box to tick a whole row or column (static/crm/js/admin_roles.js).
    Choices are grouped by record type and valued "<record type>.<action>"."""

    template_name = "admin/accounts/role/permission_grid.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        columns = [
            {"action": action, "label": GRID_LABELS.get(action, label)}
            for action, label in access.ACTIONS.items()
        ]
        rows = []
        for group_name, options, _index in context["widget"]["optgroups"]:
            by_action = {option["value"].rpartition(".")[2]: option for option in options}
            key = options[0]["value"].rpartition(".")[0] if options else ""
            rows.append(
                {
                    "key": key,
                    "label": group_name,
                    "cells": [
                        {**column, "option": by_action.get(column["action"])} for column in columns
                    ],
                }
            )
        context["widget"]["columns"] = columns
        context["widget"]["rows"] = rows
        return context

    def _render(self, template_name, context, renderer=None):
        # The template is the project's (templates/admin/...), which Django's default form
        # renderer does not search.
        return render_to_string(template_name, context)  # safe: a rendered template


class RoleForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        label=_("permissions"),
        required=False,
        widget=PermissionGrid,
        help_text=_("What this role may do with each record type, within its data scope."),
    )

    class Meta:
        model = Role
        fields = ("name", "description", "data_scope", "permissions", "max_customers")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["permissions"]
        field.choices = access.permission_choices()
        if not field.choices:
            field.help_text = _("No record types are installed yet.")
        known = {value for _group, options in field.choices for value, _label in options}
        # Grants for record types not installed here are kept, not silently dropped.
        self._unknown = [p for p in (self.instance.permissions or []) if p not in known]
        self.initial["permissions"] = [p for p in (self.instance.permissions or []) if p in known]
        self._add_field_permission_fields()

    def clean_permissions(self):
        chosen = set(self.cleaned_data["permissions"])
        missing_view = sorted(
            {p.split(".")[0] for p in chosen if p.split(".")[1] in access.NEEDS_VIEW}
            - {p.split(".")[0] for p in chosen if p.endswith(".view")}
        )
        if missing_view:
            labels = {rt.key: rt.label for rt in access.record_types()}
            raise forms.ValidationError(
                _("Changing, deleting or exporting needs “view” too: %(types)s."),
                params={"types": "、".join(labels.get(k, k) for k in missing_view)},
            )
        return sorted(chosen | set(self._unknown))

    # --- Field permissions: one choice per field of each record type -------------------

    def _add_field_permission_fields(self) -> None:
        """A choice (editable / read-only / hidden) for each field access.field_names()
        lists; the change form shows them as one table per record type."""
        self._field_rows: list[tuple[str, list[tuple[str, str, str]]]] = []
        stored = self.instance.field_permissions or {}
        for record_type in access.field_record_types():
            levels = stored.get(record_type) or {}
            rows = []
            for name, label in access.field_names(record_type):
                key = field_permission_key(record_type, name)
                self.fields[key] = forms.ChoiceField(
                    label=label,
                    choices=FieldAccess.choices,
                    initial=levels.get(name, FieldAccess.EDITABLE),
                    required=False,
                    widget=forms.RadioSelect,
                )
                rows.append((key, name, label))
            self._field_rows.append((record_type, rows))

    def field_permission_tables(self) -> list[dict]:
        labels = {rt.key: rt.label for rt in access.record_types()}
        return [
            {
                "record_type": record_type,
                "label": labels.get(record_type, record_type),
                "rows": [
                    {"name": name, "label": label, "field": self[key]} for key, name, label in rows
                ],
            }
            for record_type, rows in self._field_rows
        ]

    def clean(self):
        data = super().clean()
        # Only non-editable entries are stored; entries of fields not listed now (a custom
        # field of an app not installed, a record type without a provider) are kept.
        result = {
            rt: dict(levels) for rt, levels in (self.instance.field_permissions or {}).items()
        }
        for record_type, rows in self._field_rows:
            levels = dict(result.get(record_type) or {})
            for key, name, _label in rows:
                if self.add_prefix(key) not in self.data:
                    continue  # not posted (e.g. a field added since the page was shown)
                level = data.get(key) or FieldAccess.EDITABLE
                if level == FieldAccess.EDITABLE:
                    levels.pop(name, None)
                else:
                    levels[name] = level
            if levels:
                result[record_type] = levels
            else:
                result.pop(record_type, None)
        self.instance.field_permissions = result
        return data


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    form = RoleForm
    list_display = ("name", "data_scope", "max_customers", "user_count")
    list_filter = ("data_scope",)
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_users=Count("users"))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["field_access_choices"] = FieldAccess.choices
        return super().render_change_form(request, context, add, change, form_url, obj)

    class Media:
        js = ("crm/js/admin_roles.js",)

    @admin.display(description=_("users"), ordering="_users")
    def user_count(self, obj):
        return obj._users


# Django stores a permission's name in English ("Can add department"); the admin pages it
# opens are named in the user's language from its codename and model instead.
PERMISSION_ACTIONS = {
    "add": _("Add"),
    "change": _("Change"),
    "delete": _("Delete"),
    "view": _("View"),
}


def permission_label(permission) -> str:
    action = permission.codename.split("_", 1)[0]
    model = permission.content_type.model_class()
    if action not in PERMISSION_ACTIONS or model is None:
        return str(permission)
    return f"{model._meta.verbose_name} · {PERMISSION_ACTIONS[action]}"


class CrmUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "name", "email", "department", "role")


class CrmUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


class SafeAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete re-renders a posted value by filtering its queryset with it,
    so a value that is not an id ("²") raised instead of showing the field's error."""

    def optgroups(self, name, value, attr=None):
        try:
            return super().optgroups(name, value, attr)
        except (ValueError, TypeError, ValidationError):
            return super().optgroups(name, [], attr)


@admin.register(User)
class UserAdmin(SheetAdminMixin, BaseUserAdmin):
    form = CrmUserChangeForm
    resource_classes = [UserResource]
    import_help = (
        _(
            "One row per user, the first row holding the headers, in Chinese or English. "
            "A username that exists updates that user; a new one adds a user. A column "
            "left out of the file leaves that field as it is; a blank cell empties it "
            "(启用 aside)."
        ),
        _(
            "New users get no password and cannot sign in until an administrator sets "
            "one: open the user and use the password form. Files with a password, staff "
            "or superuser column are refused; those are set on the user's page only."
        ),
        _(
            "Each row is checked like the user form: nothing is imported until every "
            "row passes. CSV files may be in UTF-8 or GBK (as Excel saves them)."
        ),
    )
    add_form = CrmUserCreationForm
    list_display = ("username", "name", "department", "role", "phone", "is_active", "last_login")
    list_filter = ("is_active", "is_staff", "role", "department")
    list_select_related = ("department", "role")
    search_fields = ("username", "name", "email", "phone")
    ordering = ("username",)
    autocomplete_fields = ("department", "role")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "user_permissions" and field is not None:
            field.label_from_instance = permission_label
        return field

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.autocomplete_fields:
            kwargs.setdefault(
                "widget",
                SafeAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using")),
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("name", "email", "phone", "language")}),
        (_("Organisation"), {"fields": ("department", "role")}),
        (
            _("Administration"),
            {
                "fields": ("is_active", "is_staff", "is_superuser", "user_permissions"),
                "classes": ("collapse",),
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "name",
                    "email",
                    "department",
                    "role",
                    "password1",
                    "password2",
                ),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")


@admin.register(SecurityNotice)
class SecurityNoticeAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "created_at", "sent_at", "result")
    list_filter = ("kind",)
    list_select_related = ("user",)
    search_fields = ("user__username", "user__name")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
