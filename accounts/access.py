"""Who may see and change which records: the one choke point of DESIGN rule 1.

A record model opts in with `@access.register("customer")` and a manager built from
`ScopedQuerySet`; then every list, detail, edit, board, search, export, report and API
asks the same questions:

    Customer.objects.visible_to(user)          # what the user may see
    Customer.objects.editable_by(user)         # what the user may change
    get_object_for_user_or_404(user, Customer, pk=pk)   # 404 outside the scope
    has_permission(user, "customer", "export")  # may the role do this at all

A role grants actions per record type and a data scope: own records, own department,
own department and its sub-departments, or all. A user always sees their own records
(when the role may view that type at all); a record outside the scope is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.lookups import In, IsNull
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _

from .models import DataScope, Department, FieldAccess, User

ACTIONS: dict[str, str] = {
    "view": _("view"),
    "add": _("add"),
    "change": _("change"),
    "delete": _("delete"),
    "export": _("export"),
    "import": _("import"),
}
# Actions on existing records are limited by the data scope; "add" is not.
SCOPED_ACTIONS = frozenset(ACTIONS) - {"add"}
# One cannot change, delete or export what one may not see.
NEEDS_VIEW = frozenset({"change", "delete", "export"})


@dataclass(frozen=True)
class RecordType:
    key: str
    model: type[models.Model]
    # Paths from the record to the user(s) whose scope decides, e.g. ("owner",) or, for
    # a contact, ("customer__owner",); a record is in scope if any path is.
    owner_paths: tuple[str, ...] = ("owner",)
    # Records whose first owner path is empty form a public pool (公海) that everyone
    # who may view the type sees (seeing, not changing: claiming is its own service).
    pool: bool = False

    @property
    def label(self) -> str:
        return str(self.model._meta.verbose_name_plural)


_registry: dict[str, RecordType] = {}


def register(key: str, *, owner: str | tuple[str, ...] = "owner", pool: bool = False):
    """Class decorator that makes a model a scoped record type."""
    paths = (owner,) if isinstance(owner, str) else tuple(owner)

    def decorator(model: type[models.Model]) -> type[models.Model]:
        _registry[key] = RecordType(key=key, model=model, owner_paths=paths, pool=pool)
        model.record_type = key
        return model

    return decorator


def record_types() -> list[RecordType]:
    return list(_registry.values())


def record_type_for(model_or_obj) -> RecordType:
    model = model_or_obj if isinstance(model_or_obj, type) else type(model_or_obj)
    model = model._meta.concrete_model
    for record_type in _registry.values():
        if record_type.model is model:
            return record_type
    raise LookupError(f"{model.__name__} is not a registered record type")


def is_registered(model_or_obj) -> bool:
    """Is this a record type with access rules (not, say, a dictionary item)?"""
    try:
        record_type_for(model_or_obj)
    except LookupError:
        return False
    return True


def permission_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped choices for the role form: one group per record type."""
    return [
        (rt.label, [(f"{rt.key}.{action}", label) for action, label in ACTIONS.items()])
        for rt in record_types()
    ]


def _active(user) -> bool:
    # The system principal (accounts/actors.py) has an inactive row: it never signs in
    # and no picker lists it, but it acts.
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_active or getattr(user, "is_system_actor", False))
    )


def has_permission(user, record_type: str, action: str) -> bool:
    """May the user's role do `action` on records of `record_type` at all?"""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    role = user.role
    if role is None:
        return False
    granted = role.permission_set
    if action in NEEDS_VIEW and f"{record_type}.view" not in granted:
        return False
    return f"{record_type}.{action}" in granted


def data_scope(user) -> str:
    if not _active(user):
        return DataScope.OWN
    if user.is_superuser:
        return DataScope.ALL
    return user.role.data_scope if user.role_id else DataScope.OWN


def scope_department_ids(user) -> frozenset[int]:
    """Departments whose members' records the user sees; cached on the user object."""
    cached = getattr(user, "_scope_department_ids", None)
    if cached is not None:
        return cached
    scope = data_scope(user)
    if not user.department_id or scope == DataScope.OWN:
        ids = frozenset()
    elif scope == DataScope.DEPARTMENT:
        ids = frozenset({user.department_id})
    else:
        ids = frozenset(Department.objects.subtree_ids(user.department_id))
    user._scope_department_ids = ids
    return ids


def _pool_q(path: str) -> Q:
    """The last step of `path` is empty while every step before it exists."""
    parts = path.split("__")
    condition = Q(**{f"{path}__isnull": True})
    for i in range(1, len(parts)):
        condition &= Q(**{f"{'__'.join(parts[:i])}__isnull": False})
    return condition


def scope_q(user, record_type: RecordType, action: str = "view") -> Q:
    """The filter for records inside the user's data scope."""
    if data_scope(user) == DataScope.ALL:
        return Q()
    # In order: the same scope compiles to the same SQL (crm.services.search caches it).
    department_ids = sorted(scope_department_ids(user))
    members = (
        User.objects.filter(department_id__in=department_ids).values("pk")
        if department_ids
        else None
    )

    def owned(path: str) -> Q:
        condition = Q(**{path: user.pk})
        if members is not None:
            condition |= Q(**{f"{path}__in": members})
        return condition

    # One of several paths through a relation (a task's customer's owner beside its
    # assignee): not a join. Joined, the OR spans two tables and PostgreSQL hashes every
    # customer to decide each row (a rep's /tasks/: 80 ms at 100k; a manager's: 40-50 ms
    # for each of the count and the page, though the assignee alone settles most rows).
    # - A person whose scope is their own records: `customer IN (my customers)`, which
    #   PostgreSQL reads by the owner index (a few thousand) and hashes.
    # - A department's scope can hold most customers: as a set it would not fit in memory
    #   (a manager's customer timeline at 1M customers re-read 400,000 for each row), and
    #   an EXISTS is turned into that same set. So the customer's owner is read by key,
    #   `(SELECT owner FROM customer WHERE id = row.customer) IN (people in scope)`, and
    #   only for a row the direct paths (asked first) did not already let in: the
    #   manager's tasks at 100k 49 -> 15 ms, a key account's timeline unchanged. The pool
    #   of that path is asked of the same owner. (For a rep, asked that way, the pool
    #   made the follow-up list probe a customer for most of 580,000 rows: 2.4 s; as a
    #   join, 285 ms.)
    several = len(record_type.owner_paths) > 1
    pool = record_type.pool and action == "view"
    direct, through = Q(), Q()
    for index, path in enumerate(record_type.owner_paths):
        first, _, rest = path.partition("__")
        if not (several and rest):
            direct |= owned(path)
            continue
        related = record_type.model._meta.get_field(first).related_model
        if members is None:
            inside = related._default_manager.filter(owned(rest)).values("pk")
            through |= Q(**{f"{first}__in": inside})
            continue
        owner = Subquery(
            related._default_manager.filter(pk=OuterRef(first)).order_by().values(rest)[:1]
        )
        people = User.objects.filter(Q(pk=user.pk) | Q(department_id__in=department_ids))
        through |= Q(In(owner, people.values("pk")))
        if pool and index == 0:
            through |= Q(IsNull(owner, True)) & Q(**{f"{first}__isnull": False})
            pool = False
    condition = direct | through
    if pool:
        condition |= _pool_q(record_type.owner_paths[0])
    return condition


def scope_queryset(queryset: models.QuerySet, user, action: str = "view") -> models.QuerySet:
    record_type = record_type_for(queryset.model)
    if not has_permission(user, record_type.key, action):
        return queryset.none()
    if action not in SCOPED_ACTIONS:
        return queryset
    return queryset.filter(scope_q(user, record_type, action))


def visible_through(
    queryset: models.QuerySet, user, path: str, among: Q | None = None
) -> models.QuerySet:
    """The records whose person at `path`, one of their type's owner paths, is in the
    user's scope (users_in_scope, narrowed by `among`, a filter on users). They are all
    visible by that path alone, so this is `visible_to` narrowed to them without the
    other paths' joins: a report of what the team did (activities by author) needs no
    join on 100k customers."""
    record_type = record_type_for(queryset.model)
    if path not in record_type.owner_paths:
        raise ValueError(f"{path!r} is not an owner path of {record_type.key}")
    if not has_permission(user, record_type.key, "view"):
        return queryset.none()
    people = users_in_scope(user)
    if among is not None:
        people = people.filter(among)
    return queryset.filter(**{f"{path}__in": people.values("pk")})


class ScopedQuerySet(models.QuerySet):
    """Base queryset for every record model with an owner."""

    def visible_to(self, user) -> ScopedQuerySet:
        return scope_queryset(self, user, "view")

    def editable_by(self, user) -> ScopedQuerySet:
        return scope_queryset(self, user, "change")

    def deletable_by(self, user) -> ScopedQuerySet:
        return scope_queryset(self, user, "delete")

    def exportable_by(self, user) -> ScopedQuerySet:
        return scope_queryset(self, user, "export")

    def for_action(self, user, action: str) -> ScopedQuerySet:
        return scope_queryset(self, user, action)


def _owner_id(obj: models.Model, path: str) -> tuple[bool, int | None]:
    """Follow `path` on a loaded record: (whether every step before the last exists, id)."""
    *steps, last = path.split("__")
    target = obj
    for step in steps:
        target = getattr(target, step)
        if target is None:
            return False, None
    return True, getattr(target, f"{last}_id")


def can(user, obj: models.Model, action: str) -> bool:
    """May the user do `action` on this loaded record? Same rule as the querysets."""
    record_type = record_type_for(obj)
    if not has_permission(user, record_type.key, action):
        return False
    if action not in SCOPED_ACTIONS or data_scope(user) == DataScope.ALL:
        return True
    owner_ids = []
    for index, path in enumerate(record_type.owner_paths):
        reached, owner_id = _owner_id(obj, path)
        if owner_id is None:
            if index == 0 and reached and record_type.pool and action == "view":
                return True
            continue
        if owner_id == user.pk:
            return True
        owner_ids.append(owner_id)
    department_ids = scope_department_ids(user)
    if not department_ids or not owner_ids:
        return False
    return User.objects.filter(pk__in=owner_ids, department_id__in=department_ids).exists()


def get_object_for_user_or_404(user, model_or_queryset, action: str = "view", **lookup):
    """The record if the user may do `action` on it; 404 (never 403) otherwise."""
    if isinstance(model_or_queryset, models.QuerySet):
        queryset = model_or_queryset
    else:
        queryset = model_or_queryset._default_manager.all()
    return get_object_or_404(scope_queryset(queryset, user, action), **lookup)


def user_in_scope(user, other: User | None) -> bool:
    """Whether `other` (loaded) is among `users_in_scope(user)`: the same rule, read from
    the row in hand instead of a query."""
    if other is None or not other.is_active or not _active(user):
        return False
    if data_scope(user) == DataScope.ALL or other.pk == user.pk:
        return True
    return other.department_id in scope_department_ids(user)


def anyone_in_scope_but(user, user_id: int | None) -> bool:
    """Whether `users_in_scope(user)` holds anyone but `user_id` (someone to hand a
    record to); no query for a user who sees only their own records."""
    if not _active(user):
        return False
    if data_scope(user) != DataScope.ALL and not scope_department_ids(user):
        return user.pk != user_id
    return users_in_scope(user).exclude(pk=user_id).exists()


def users_in_scope(user) -> models.QuerySet:
    """Active people whose records fall inside the user's data scope (the user included)."""
    if not _active(user):
        return User.objects.none()
    users = User.objects.filter(is_active=True).select_related("department", "role")
    if data_scope(user) != DataScope.ALL:
        users = users.filter(Q(pk=user.pk) | Q(department_id__in=scope_department_ids(user)))
    return users


# --- Field permissions (DESIGN rule 2) -------------------------------------------------
# Which fields of a record type a role may edit, only read, or not see at all. The record
# apps say which fields exist (standard and custom) through a provider; accounts never
# imports them. Forms, detail pages, list columns, filters and exports ask field_access.

FieldProvider = Callable[[], list[tuple[str, str]]]
_field_providers: dict[str, FieldProvider] = {}


def register_fields(record_type: str, provider: FieldProvider) -> None:
    """`provider()` returns [(field name, label)] of the fields a role's field
    permissions may restrict (custom fields as "cf_<key>")."""
    _field_providers[record_type] = provider


def field_names(record_type: str) -> list[tuple[str, str]]:
    provider = _field_providers.get(record_type)
    return provider() if provider else []


def field_record_types() -> list[str]:
    return list(_field_providers)


def field_access(user, record_type: str, field: str) -> str:
    """ "editable", "readonly" or "hidden" for this user; superusers and people without a
    role restriction edit everything (the data scope and actions still apply)."""
    if not _active(user) or user.is_superuser or user.role_id is None:
        return FieldAccess.EDITABLE
    return user.role.field_access(record_type, field)


def hidden_fields(user, record_type: str) -> frozenset[str]:
    if not _active(user) or user.is_superuser or user.role_id is None:
        return frozenset()
    levels = (user.role.field_permissions or {}).get(record_type) or {}
    return frozenset(name for name, level in levels.items() if level == FieldAccess.HIDDEN)


def readonly_fields(user, record_type: str) -> frozenset[str]:
    if not _active(user) or user.is_superuser or user.role_id is None:
        return frozenset()
    levels = (user.role.field_permissions or {}).get(record_type) or {}
    return frozenset(name for name, level in levels.items() if level == FieldAccess.READONLY)
