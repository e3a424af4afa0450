"""Users, the department tree and roles: who someone is and what they may see."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from .phones import normalize_phone

TREE_CACHE_KEY = "accounts:department-edges"
# Other processes (with a per-process cache) see a change within this time.
TREE_CACHE_SECONDS = 60


class DepartmentQuerySet(models.QuerySet):
    def tree_map(self) -> dict[int, Department]:
        """All departments by id, each with `parent` resolved in memory: one query."""
        nodes = {d.pk: d for d in self.order_by("sort_order", "name")}
        for node in nodes.values():
            if node.parent_id in nodes:
                node.parent = nodes[node.parent_id]
        return nodes

    def edges(self) -> list[tuple[int, int | None]]:
        """(id, parent id) of every department. The whole tree is small and read on most
        requests (data scopes), so it is cached until a department changes."""
        if self.query.where:
            return list(self.values_list("pk", "parent_id"))
        edges = cache.get(TREE_CACHE_KEY)
        if edges is None:
            edges = list(self.values_list("pk", "parent_id"))
            cache.set(TREE_CACHE_KEY, edges, TREE_CACHE_SECONDS)
        return edges

    def subtree_ids(self, root_id: int) -> set[int]:
        """The id of `root_id` and of every department below it (at most one query)."""
        children: dict[int | None, list[int]] = {}
        for pk, parent_id in self.edges():
            children.setdefault(parent_id, []).append(pk)
        found, stack = set(), [root_id]
        while stack:
            pk = stack.pop()
            if pk not in found:
                found.add(pk)
                stack.extend(children.get(pk, ()))
        return found


class Department(models.Model):
    """A node of the organisation tree, e.g. 销售部 → 销售一部."""

    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    objects = DepartmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"], name="department_unique_name_per_parent"
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(parent__isnull=True),
                name="department_unique_root_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def ancestors(self) -> list[Department]:
        """From the root down to the parent; assumes `parent` chains are loaded or cheap."""
        chain, node, seen = [], self.parent, {self.pk}
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return list(reversed(chain))

    @property
    def path_display(self) -> str:
        return " / ".join([d.name for d in self.ancestors()] + [self.name])

    def clean(self) -> None:
        if self.pk and self.parent_id in Department.objects.subtree_ids(self.pk):
            message = _("A department cannot be placed under itself or its own sub-department.")
            raise ValidationError({"parent": message})


@receiver([post_save, post_delete], sender=Department)
def _forget_department_tree(**kwargs) -> None:
    cache.delete(TREE_CACHE_KEY)


class DataScope(models.TextChoices):
    """How far a role's view of owned records reaches (DESIGN rule 1)."""

    OWN = "own", _("Own records only")
    DEPARTMENT = "department", _("Own department")
    DEPARTMENT_TREE = "department_tree", _("Own department and sub-departments")
    ALL = "all", _("All records")


class FieldAccess(models.TextChoices):
    """What a role may do with one field of a record type (DESIGN rule 2)."""

    EDITABLE = "editable", _("Editable")
    READONLY = "readonly", _("Read-only")
    HIDDEN = "hidden", _("Hidden")


class Role(models.Model):
    """A job role: its data scope and what it may do with each record type."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    data_scope = models.CharField(
        _("data scope"), max_length=20, choices=DataScope.choices, default=DataScope.OWN
    )
    # "record_type.action" strings, e.g. "customer.view"; see accounts.access.
    permissions = models.JSONField(_("permissions"), default=list, blank=True)
    # {"customer": {"phone": "readonly", "cf_revenue": "hidden"}}; a field not listed is
    # editable. Field names are those of accounts.access.field_names(record_type).
    field_permissions = models.JSONField(_("field permissions"), default=dict, blank=True)
    max_customers = models.PositiveIntegerField(
        _("customer limit"),
        null=True,
        blank=True,
        help_text=_(
            "How many customers one person with this role may own; claiming from the "
            "public pool stops at the limit. Empty: no limit."
        ),
    )

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def permission_set(self) -> frozenset[str]:
        return frozenset(self.permissions or ())

    def field_access(self, record_type: str, field: str) -> str:
        levels = (self.field_permissions or {}).get(record_type) or {}
        return levels.get(field, FieldAccess.EDITABLE)


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class User(AbstractUser):
    """A person who signs in. Chinese names are one field (姓名), not first/last."""

    first_name = None
    last_name = None
    name = models.CharField(_("full name"), max_length=100, blank=True)
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    role = models.ForeignKey(
        Role,
        verbose_name=_("role"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
    )
    phone = models.CharField(
        _("phone"),
        max_length=32,
        blank=True,
        help_text=_("Stored in international form, e.g. +8613800138000."),
    )
    language = models.CharField(
        _("preferred language"),
        max_length=10,
        choices=Language.choices,
        default=settings.LANGUAGE_CODE if settings.LANGUAGE_CODE in Language.values else "zh-hans",
    )

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name()

    def get_full_name(self) -> str:
        return self.name or self.username

    def get_short_name(self) -> str:
        return self.name or self.username

    def clean(self) -> None:
        super().clean()
        if self.phone:
            self.phone = normalize_phone(self.phone, field="phone")


class SecurityNotice(models.Model):
    """An email telling a user about a change to their account (e.g. a new password).

    Written in the same transaction as the change and delivered by a Celery task that
    claims the row first, so a retried or duplicated task never mails twice and a notice
    written while the broker was down is still sent by the periodic sweep.
    """

    class Kind(models.TextChoices):
        PASSWORD_CHANGED = "password_changed", _("Password changed")

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="security_notices"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    result = models.CharField(_("result"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("security notice")
        verbose_name_plural = _("security notices")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(sent_at__isnull=True),
                name="securitynotice_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.user}"
