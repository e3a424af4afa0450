"""Users from a spreadsheet (e.g. HR's sheet of 200 reps) and back, in Django admin.

One row per user, keyed by username: a username that exists updates that user, a new
one creates a user. The cells go through the rules of the admin's user forms: the
model's full_clean (username characters and uniqueness, email, lengths, the phone
normalised by accounts.phones), a username that differs from an existing one only in
case refused (as UserCreationForm does), and a department and a role that exist.

A new user gets an unusable password: the project has no invitation or password-reset
email, so an administrator sets each password on the user's page. Passwords, staff and
superuser status are never read from a file (a file with such a column is refused) and
never written to one.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.fields import Field

from .models import Department, Role, User
from .sheets import (
    Column,
    LookupWidget,
    PhoneWidget,
    SheetResource,
    TextWidget,
    YesNoWidget,
    index_by,
    match_key,
)

PATH_SEPARATOR = re.compile(r"\s*[/／>＞]\s*")


class DepartmentWidget(LookupWidget):
    """A department by its name ("华东区") or, where names repeat, by as much of its path
    as tells it apart ("销售部/华东区", "销售部 / 销售一部 / 华东区"): the path's last
    names are the department's and its parents' names."""

    def candidates(self):
        self.tree = Department.objects.tree_map()
        return index_by(self.tree.values(), lambda d: d.name)

    def find(self, text: str):
        names = [name for name in PATH_SEPARATOR.split(text) if name]
        if not names:
            raise ValueError(self.not_found(text))
        found = self._index().get(match_key(names[-1]), [])
        found = [d for d in found if self._ends_with(d, names[:-1])]
        if not found:
            raise ValueError(self.not_found(text))
        if len(found) > 1:
            raise ValueError(
                gettext(
                    "More than one department is called “%(value)s”: write its path, "
                    "e.g. “%(path)s”."
                )
                % {"value": text, "path": self.label(found[0])}
            )
        return found[0]

    @staticmethod
    def _ends_with(department: Department, parents: list[str]) -> bool:
        chain = department.ancestors()
        if len(parents) > len(chain):
            return False
        tail = chain[len(chain) - len(parents) :] if parents else []
        return all(match_key(d.name) == match_key(n) for d, n in zip(tail, parents, strict=True))

    def not_found(self, text: str) -> str:
        return gettext("No department “%(value)s”.") % {"value": text}

    def label(self, obj) -> str:
        self._index()
        department = self.tree.get(obj.pk, obj)
        return department.path_display


class RoleWidget(LookupWidget):
    """A role by its name."""

    def candidates(self):
        return index_by(Role.objects.all(), lambda r: r.name)

    def not_found(self, text: str) -> str:
        return gettext("No role “%(value)s”.") % {"value": text}


class UserResource(SheetResource):
    username = Field(attribute="username", widget=TextWidget())
    name = Field(attribute="name", widget=TextWidget())
    email = Field(attribute="email", widget=TextWidget())
    phone = Field(attribute="phone", widget=PhoneWidget())
    department = Field(attribute="department", widget=DepartmentWidget())
    role = Field(attribute="role", widget=RoleWidget())
    is_active = Field(attribute="is_active", widget=YesNoWidget(), saves_null_values=False)

    columns = (
        Column(
            "username",
            "用户名",
            "username",
            ("登录名", "账号", "帐号"),
            _("the key: an existing username updates that user"),
        ),
        Column("name", "姓名", "name", ("full name", "名字")),
        Column("email", "邮箱", "email", ("电子邮箱", "邮件", "e-mail")),
        Column("phone", "手机", "phone", ("手机号", "手机号码", "电话", "mobile")),
        Column(
            "department",
            "部门",
            "department",
            (),
            _("by name, or by path where names repeat: 销售部/华东区"),
        ),
        Column("role", "角色", "role", (), _("by name")),
        Column(
            "is_active",
            "启用",
            "active",
            ("是否启用", "状态", "有效"),
            _("是 or 否; blank keeps the user as they are (new users are active)"),
        ),
    )
    refused_headers = (
        "password",
        "密码",
        "初始密码",
        "is_superuser",
        "superuser",
        "超级用户",
        "超级用户状态",
        "is_staff",
        "staff",
        "staff status",
        "职员状态",
        "工作人员状态",
        "工作人员",
    )

    class Meta:
        model = User
        fields = ("username", "name", "email", "phone", "department", "role", "is_active")
        import_id_fields = ("username",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def after_init_instance(self, instance, new, row, **kwargs):
        if new:
            # No password until an administrator sets one (there is no invitation flow).
            instance.set_unusable_password()

    def check_row(self, instance, row, errors) -> None:
        """UserCreationForm's rule: no two usernames that differ only in case."""
        username = instance.username
        if (
            instance.pk is None
            and username
            and "username" not in errors
            and User.objects.filter(username__iexact=username).exists()
        ):
            message = User._meta.get_field("username").error_messages["unique"]
            errors.setdefault("username", []).append(ValidationError(message, code="unique"))
