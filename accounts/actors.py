"""Who makes a change when it is not a person at the keyboard: an import job, an
automation rule, an API token, the scheduler, a web form.

Services take `by`, a `User`, and check its rights with `accounts.access`. A system
actor is passed the same way, as a user object that carries an `actor`:

- `acting(user, kind=..., id=..., name=...)`: on a person's behalf and with exactly
  their rights (an import runs as its importer, an API call as its token's user);
- `system(kind=..., id=..., name=...)`: with the system's own rights (every record, no
  field restrictions): an automation rule, the scheduler.

History and record events store the actor's kind, id and name beside the user
("由导入 #12", "由自动化规则「报价提醒」"). `actor_of(by)` reads it back; a person's own
change has none.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .models import User

SYSTEM_USERNAME = "crm-system"


class ActorKind:
    IMPORT = "import"
    RULE = "rule"
    API = "api"
    SCHEDULER = "scheduler"
    SYSTEM = "system"
    WEBFORM = "webform"

    ALL = (IMPORT, RULE, API, SCHEDULER, SYSTEM, WEBFORM)


# Kinds that act on their own, with the system's rights (the rest act for a person).
SYSTEM_KINDS = frozenset({ActorKind.RULE, ActorKind.SCHEDULER, ActorKind.SYSTEM, ActorKind.WEBFORM})


@dataclass(frozen=True)
class Actor:
    kind: str
    id: int | None = None
    name: str = ""

    def __post_init__(self):
        if self.kind not in ActorKind.ALL:
            raise ValueError(f"unknown actor kind {self.kind!r}")

    @property
    def label(self) -> str:
        """What history says made the change, in the reader's language."""
        return actor_label(self.kind, self.id, self.name)


def actor_label(kind: str, actor_id: int | None, name: str) -> str:
    if kind == ActorKind.IMPORT:
        return _("import #%(id)s") % {"id": actor_id}
    if kind == ActorKind.RULE:
        return _("automation rule “%(name)s”") % {"name": name or actor_id}
    if kind == ActorKind.API:
        return _("API token “%(name)s”") % {"name": name or actor_id}
    if kind == ActorKind.WEBFORM:
        return _("web form “%(name)s”") % {"name": name or actor_id}
    if kind == ActorKind.SCHEDULER:
        return _("the scheduler") + (f" ({name})" if name else "")
    return _("the system") + (f" ({name})" if name else "")


def acting(user: User, *, kind: str, id: int | None = None, name: str = "") -> User:
    """`user`, marked as acting through a system actor: same rights, recorded as such."""
    principal = copy.copy(user)
    principal.actor = Actor(kind, id, name)
    return principal


def system_user() -> User:
    """The row system changes are attributed to (created_by, history's user). It cannot
    sign in (no usable password, inactive) and is listed in no picker (inactive)."""
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"name": "系统", "is_active": False, "is_superuser": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def system(*, kind: str, id: int | None = None, name: str = "", user: User | None = None) -> User:
    """A principal with the system's own rights (every record), recorded as `kind`;
    `user`: the `system_user()` row, when the caller already read it."""
    principal = acting(user or system_user(), kind=kind, id=id, name=name)
    principal.is_system_actor = True
    return principal


def quiet(by: User) -> User:
    """`by`, whose changes fire no automation rules: an import or a bulk action the user
    did not opt in for (their events are written with `automation_depth` NULL)."""
    principal = copy.copy(by)
    principal.automation_depth = None
    return principal


def at_depth(by: User, depth: int) -> User:
    """`by`, whose changes are `depth` rule runs away from a person's change (a rule's
    action acting on a rule's change...), so rules triggering rules stop at a depth."""
    principal = copy.copy(by)
    principal.automation_depth = depth
    return principal


def automation_depth(by) -> int | None:
    """What an event written by `by` records: 0 for a person, None for a quiet change."""
    return getattr(by, "automation_depth", 0)


def actor_of(by) -> Actor | None:
    """The system actor behind `by`, or None for a person's own change."""
    return getattr(by, "actor", None)


def is_system(user) -> bool:
    """True for the system principal: active for access checks though its row is not."""
    return bool(getattr(user, "is_system_actor", False))
