"""The demo company's organisation: departments, roles and one user per role.

`seed_organisation()` converges on this data (safe to run again). The `seed_demo`
command of the crm app calls it and then adds the demo customers; accounts knows
nothing of crm, so the roles are granted actions on whatever record types are
registered when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from . import access
from .models import DataScope, Department, Role, User

DEMO_PASSWORD = "demo1234"

# (parent name or None, name, order)
DEPARTMENTS = [
    (None, "销售部", 10),
    ("销售部", "销售一部", 10),
    ("销售部", "销售二部", 20),
    (None, "客服部", 20),
]


@dataclass(frozen=True)
class DemoRole:
    name: str
    data_scope: str
    # Granted on every registered record type.
    actions: tuple[str, ...]
    description: str
    # Further "record_type.action" grants, where the record type is registered.
    extra: tuple[str, ...] = ()
    max_customers: int | None = None


ROLES = [
    DemoRole("管理员", DataScope.ALL, tuple(access.ACTIONS), "配置系统，查看和处理全部数据。"),
    DemoRole(
        "销售经理",
        DataScope.DEPARTMENT_TREE,
        ("view", "add", "change", "delete", "export", "import"),
        "管理本部门及下级部门的客户、线索和商机，查看团队报表，导入客户名单。",
    ),
    DemoRole(
        "销售代表",
        DataScope.OWN,
        ("view", "add", "change"),
        "跟进自己负责的客户、线索和商机。",
        max_customers=200,
    ),
    DemoRole(
        "客服",
        DataScope.ALL,
        ("view",),
        "查看所有客户的沟通记录，可以记录跟进，不能修改客户资料。",
        extra=("activity.add",),
    ),
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

DEMO_USERNAMES = [row[0] for row in USERS]
# The sales reps and their manager: the people demo customers belong to.
SALES_REPS = ["wangfang", "lina", "liuyang", "chenjing"]
SALES_MANAGER = "zhangwei"


def role_permissions(role: DemoRole) -> list[str]:
    registered = {rt.key for rt in access.record_types()}
    granted = {f"{key}.{action}" for key in registered for action in role.actions}
    granted |= {p for p in role.extra if p.split(".", 1)[0] in registered}
    return sorted(granted)


@transaction.atomic
def seed_organisation(reset_passwords: bool = False) -> list[tuple[str, str, str, str]]:
    """Create or restore the demo organisation.

    Returns one row per demo user, (username, name, role, password shown): the
    password is DEMO_PASSWORD when it was set now, "(unchanged)" otherwise.
    """
    departments = _departments()
    roles = _roles()
    return _users(departments, roles, reset_passwords)


def _departments() -> dict[str, Department]:
    found: dict[str, Department] = {}
    for parent_name, name, order in DEPARTMENTS:
        parent = found[parent_name] if parent_name else None
        department, _ = Department.objects.update_or_create(
            parent=parent, name=name, defaults={"sort_order": order}
        )
        found[name] = department
    return found


def _roles() -> dict[str, Role]:
    found: dict[str, Role] = {}
    for spec in ROLES:
        role, _ = Role.objects.update_or_create(
            name=spec.name,
            defaults={
                "data_scope": spec.data_scope,
                "permissions": role_permissions(spec),
                "description": spec.description,
                "max_customers": spec.max_customers,
            },
        )
        found[spec.name] = role
    return found


def _users(departments, roles, reset_passwords):
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
