"""Load the demo company. Safe to run again: it converges on the same data."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import access
from accounts.models import DataScope, Department, Role, User

DEMO_PASSWORD = "demo1234"

# (parent name or None, name, order)
DEPARTMENTS = [
    (None, "销售部", 10),
    ("销售部", "销售一部", 10),
    ("销售部", "销售二部", 20),
    (None, "客服部", 20),
]

# name, data scope, actions granted on every record type, description
ROLES = [
    ("管理员", DataScope.ALL, tuple(access.ACTIONS), "配置系统，查看和处理全部数据。"),
    (
        "销售经理",
        DataScope.DEPARTMENT_TREE,
        ("view", "add", "change", "delete", "export"),
        "管理本部门及下级部门的客户、线索和商机，查看团队报表。",
    ),
    ("销售代表", DataScope.OWN, ("view", "add", "change"), "跟进自己负责的客户、线索和商机。"),
    ("客服", DataScope.ALL, ("view",), "查看所有客户的沟通记录，不能修改。"),
]

# username, name, department, role, phone, superuser
USERS = [
    ("admin", "系统管理员", None, "管理员", "13800000001", True),
    ("zhangwei", "张伟", "销售部", "销售经理", "13800000002", False),
    ("wangfang", "王芳", "销售一部", "销售代表", "13800000003", False),
    ("lina", "李娜", "销售一部", "销售代表", "13800000004", False),
    ("liuyang", "刘洋", "销售二部", "销售代表", "13800000005", False),
    ("chenjing", "陈静", "销售二部", "销售代表", "13800000006", False),
    ("zhaomin", "赵敏", "客服部", "客服", "13800000007", False),
]


class Command(BaseCommand):
    help = "Create or update the demo company: departments, roles and one user per role."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help=f"Set every demo user's password back to {DEMO_PASSWORD!r}.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (demo users have a published password).",
        )

    def handle(self, *args, reset_passwords=False, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a published password; "
                "with DEBUG off, pass --force if this really is a demo system."
            )
        with transaction.atomic():
            departments = self._departments()
            roles = self._roles()
            rows = self._users(departments, roles, reset_passwords)
        self.stdout.write(self.style.SUCCESS("Demo company ready. Sign in at /accounts/login/ as:"))
        for username, name, role, password in rows:
            self.stdout.write(f"  {username:<10} {password:<18} {name}（{role}）")

    def _departments(self) -> dict[str, Department]:
        found: dict[str, Department] = {}
        for parent_name, name, order in DEPARTMENTS:
            parent = found[parent_name] if parent_name else None
            department, _ = Department.objects.update_or_create(
                parent=parent, name=name, defaults={"sort_order": order}
            )
            found[name] = department
        return found

    def _roles(self) -> dict[str, Role]:
        found: dict[str, Role] = {}
        for name, scope, actions, description in ROLES:
            permissions = sorted(
                f"{rt.key}.{action}" for rt in access.record_types() for action in actions
            )
            role, _ = Role.objects.update_or_create(
                name=name,
                defaults={
                    "data_scope": scope,
                    "permissions": permissions,
                    "description": description,
                },
            )
            found[name] = role
        return found

    def _users(self, departments, roles, reset_passwords):
        rows = []
        for username, name, department, role, phone, superuser in USERS:
            user, created = User.objects.update_or_create(
                username=username,
                defaults={
                    "name": name,
                    "department": departments.get(department),
                    "role": roles[role],
                    "phone": f"+86{phone}",
                    "email": f"{username}@demo.example.com",
                    "is_staff": superuser,
                    "is_superuser": superuser,
                    "is_active": True,
                },
            )
            if created or reset_passwords:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
                password = DEMO_PASSWORD
            else:
                password = "(unchanged)"
            rows.append((username, name, role, password))
        return rows
