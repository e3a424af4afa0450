"""Writes to customers: create, edit, transfer, tag, the public pool, duplicates, merge.

Views, imports, the API and automation all call these, so each rule lives once. Each
service re-checks access: callers pass what the user picked, the service keeps only
what the user may change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import FieldAccess, User
from accounts.phones import normalize_phone

from .. import validation
from ..fields import schema
from ..fields import values as field_values
from ..models import (
    Activity,
    Change,
    Contact,
    Customer,
    EventKind,
    PoolEvent,
    Tag,
    Task,
    TaskStatus,
)
from .history import Changes, diff, record_change, record_changes, snapshot
from .similar_names import similar_names


class PoolError(Exception):
    """A claim the pool refuses; the message is for the user."""


def _require(user: User, obj, action: str) -> None:
    if not access.can(user, obj, action):
        raise PermissionDenied


def _may_edit_field(user: User, name: str) -> bool:
    return access.field_access(user, "customer", name) == FieldAccess.EDITABLE


REASON_MAX = PoolEvent._meta.get_field("reason").max_length


def resolve_tags(tags: Iterable[Tag | str]) -> list[Tag]:
    """Tag rows for a mix of tags and names; a name nobody used yet becomes a new tag.
    A name too long is refused, never cut short."""
    resolved: list[Tag] = []
    for tag in tags:
        if isinstance(tag, str):
            name = validation.validate_tag_name(tag)
            if not name:
                continue
            tag, _created = Tag.objects.get_or_create(name=name)
        if tag not in resolved:
            resolved.append(tag)
    return resolved


@transaction.atomic
def create_customer(
    *, customer: Customer, by: User, tags: Iterable[Tag | str] | None = ()
) -> Customer:
    """Save a new customer (owner as given: None puts it in the pool). `tags` may mix
    Tag rows and names of tags to create."""
    if not access.has_permission(by, "customer", "add"):
        raise PermissionDenied
    customer.created_by = by
    field_values.enforce_field_access(customer, stored=None, by=by, record_type="customer")
    field_values.check_custom(customer, record_type="customer", before={})
    customer.full_clean()
    field_values.save_checking_unique(customer, record_type="customer")
    if tags is not None and _may_edit_field(by, "tags"):
        customer.tags.set(resolve_tags(tags))
    record_change(customer, by=by, kind=EventKind.CREATED)
    return customer


@transaction.atomic
def update_customer(
    *, customer: Customer, by: User, tags: Iterable[Tag | str] | None = None
) -> Customer:
    """Save edits to a customer and keep what changed in its history."""
    stored = Customer.objects.select_related("owner", "type", "source", "level", "industry").get(
        pk=customer.pk
    )
    _require(by, stored, "change")
    before = snapshot(stored)
    field_values.enforce_field_access(customer, stored=stored, by=by, record_type="customer")
    field_values.check_custom(customer, record_type="customer", before=stored.custom or {})
    customer.full_clean()
    field_values.save_checking_unique(customer, record_type="customer")
    if tags is not None and _may_edit_field(by, "tags"):
        customer.tags.set(resolve_tags(tags))
    record_change(customer, by=by, changes=diff(before, snapshot(customer, like=stored)))
    return customer


@transaction.atomic
def transfer_customers(*, customers: QuerySet[Customer], to: User, by: User) -> int:
    """Give customers to another owner; their open tasks of the old owner follow."""
    if not access.users_in_scope(by).filter(pk=to.pk).exists():
        raise PermissionDenied
    rows = list(customers.editable_by(by).exclude(owner=to).select_related("owner"))
    if not rows:
        return 0
    ids = [c.pk for c in rows]
    for old_owner_id in {c.owner_id for c in rows if c.owner_id}:
        Task.objects.filter(
            customer_id__in=ids, assignee_id=old_owner_id, status=TaskStatus.OPEN
        ).update(assignee=to)
    Customer.objects.filter(pk__in=ids).update(
        owner=to, released_at=None, updated_at=timezone.now()
    )
    record_changes(
        rows,
        by=by,
        kind=EventKind.TRANSFERRED,
        changes=[
            Changes.one("owner", c.owner_id, to.pk, old_text=str(c.owner or ""), new_text=str(to))
            for c in rows
        ],
    )
    return len(rows)


@transaction.atomic
def tag_customers(*, customers: QuerySet[Customer], tag: Tag, by: User) -> int:
    rows = list(customers.editable_by(by).exclude(tags=tag))
    if not rows:
        return 0
    through = Customer.tags.through
    had: dict[int, list[int]] = {c.pk: [] for c in rows}
    for customer_id, tag_id in through.objects.filter(customer_id__in=had).values_list(
        "customer_id", "tag_id"
    ):
        had[customer_id].append(tag_id)
    through.objects.bulk_create(
        [through(customer_id=c.pk, tag_id=tag.pk) for c in rows], ignore_conflicts=True
    )
    record_changes(
        rows,
        by=by,
        kind=EventKind.TAGGED,
        changes=[
            Changes.one(
                "tags",
                sorted(had[c.pk]),
                sorted([*had[c.pk], tag.pk]),
                old_text="",
                new_text=tag.name,
            )
            for c in rows
        ],
    )
    return len(rows)


@transaction.atomic
def release_customers(*, customers: QuerySet[Customer], by: User, reason: str = "") -> int:
    """Return customers to the public pool; each return is recorded with its reason."""
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise ValidationError(
            _("The reason has %(limit)s characters at most.") % {"limit": REASON_MAX}
        )
    rows = list(customers.editable_by(by).filter(owner__isnull=False).select_related("owner"))
    if not rows:
        return 0
    now = timezone.now()
    ids = [c.pk for c in rows]
    Customer.objects.filter(pk__in=ids).update(owner=None, released_at=now, updated_at=now)
    PoolEvent.objects.bulk_create(
        PoolEvent(customer=c, user=by, action=PoolEvent.Action.RELEASE, reason=reason) for c in rows
    )
    record_changes(
        rows,
        by=by,
        kind=EventKind.RELEASED,
        changes=[
            Changes.one("owner", c.owner_id, None, old_text=str(c.owner), new_text="") for c in rows
        ],
        note=reason,
    )
    return len(rows)


def owned_count(user: User) -> int:
    return Customer.objects.filter(owner=user).count()


@transaction.atomic
def claim_customer(*, customer_id: int, by: User) -> Customer:
    """Take a customer from the pool, within the role's limit of owned customers."""
    customer = access.get_object_for_user_or_404(by, Customer, pk=customer_id)
    if not access.has_permission(by, "customer", "change"):
        raise PermissionDenied
    # Serialise one person's claims so two at once cannot both pass the limit.
    User.objects.select_for_update().filter(pk=by.pk).first()
    limit = by.role.max_customers if by.role_id else None
    if limit is not None and not by.is_superuser:
        owned = owned_count(by)
        if owned >= limit:
            raise PoolError(
                _("You own %(owned)s customers; your role allows %(limit)s. Release some first.")
                % {"owned": owned, "limit": limit}
            )
    taken = Customer.objects.filter(pk=customer.pk, owner__isnull=True).update(
        owner=by, released_at=None, updated_at=timezone.now()
    )
    if not taken:
        raise PoolError(_("Someone else has just claimed this customer."))
    customer.refresh_from_db()
    PoolEvent.objects.create(customer=customer, user=by, action=PoolEvent.Action.CLAIM)
    record_change(
        customer,
        by=by,
        kind=EventKind.CLAIMED,
        changes=Changes.one("owner", None, by.pk, old_text="", new_text=str(by)),
    )
    return customer


# --- Duplicates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Duplicate:
    """A record that looks like the one being entered. `visible` says if the user may
    open it; if not, the page says only that it exists and who owns it."""

    record: Customer | Contact
    matched_on: str
    visible: bool
    # A customer whose name is like the one typed (上海航启医疗 for 上海航启医疗器械有限公司),
    # not the same.
    similar: bool = False

    @property
    def owner(self) -> User | None:
        customer = self.record if isinstance(self.record, Customer) else self.record.customer
        return customer.owner

    @property
    def is_contact(self) -> bool:
        return isinstance(self.record, Contact)


def _safe_phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except ValidationError:
        return ""


# How many customers with a name like the one typed the warning shows, closest first.
SIMILAR_NAMES = 5


def find_duplicates(
    *,
    user: User,
    name: str = "",
    phones: Iterable[str] = (),
    email: str = "",
    exclude_customer: int | None = None,
    exclude_contact: int | None = None,
    limit: int = 10,
    similar: bool = False,
) -> list[Duplicate]:
    """Customers and contacts with the same name, phone or email, across the company;
    with `similar` (a company's name is typed), then the few customers whose name is
    most like it (`similar_names`: the legal form and a region left out, trigram
    similarity on PostgreSQL).

    Deliberately not scoped: a rep must learn that a customer already exists even if a
    colleague owns it. What the user may not open is reported without a link.
    """
    name = (name or "").strip()
    numbers = [n for n in (_safe_phone(p) for p in phones) if n]
    email = (email or "").strip()
    searches = [
        (
            Customer.objects.select_related("owner").exclude(pk=exclude_customer),
            [
                (name, Q(name__iexact=name), _("name")),
                (numbers, Q(phone__in=numbers), _("phone")),
                (email, Q(email__iexact=email), _("email")),
            ],
        ),
        (
            Contact.objects.select_related("customer__owner").exclude(pk=exclude_contact),
            [
                (name, Q(name__iexact=name), _("name")),
                (numbers, Q(mobile__in=numbers) | Q(phone__in=numbers), _("phone")),
                (email, Q(email__iexact=email), _("email")),
            ],
        ),
    ]
    found: list[Duplicate] = []
    for queryset, conditions in searches:
        matches: dict[int, tuple] = {}
        for given, condition, matched_on in conditions:
            if given:
                for record in queryset.filter(condition)[:limit]:
                    matches.setdefault(record.pk, (record, matched_on, False))
        if similar and queryset.model is Customer and name:
            for record, _score in similar_names(queryset, name, limit=SIMILAR_NAMES):
                matches.setdefault(record.pk, (record, _("name"), True))
        if not matches:
            continue
        # Which of them the user may open: one scoped query, the same rule as every list.
        visible = set(
            queryset.model.objects.visible_to(user)
            .filter(pk__in=list(matches))
            .values_list("pk", flat=True)
        )
        found += [Duplicate(r, on, r.pk in visible, like) for r, on, like in matches.values()]
    return found[:limit]


# --- Merge ----------------------------------------------------------------------------

MERGEABLE_FIELDS = (
    "name",
    "type",
    "source",
    "level",
    "industry",
    "phone",
    "email",
    "address",
    "website",
    "next_follow_up_at",
)


def mergeable_fields(user: User) -> list[tuple[str, str]]:
    """(name, label) of the fields whose value the user picks when merging: the standard
    ones and the active custom fields ("cf_<key>") the user's role may edit."""
    restricted = access.hidden_fields(user, "customer") | access.readonly_fields(user, "customer")
    fields = [
        (name, str(Customer._meta.get_field(name).verbose_name))
        for name in MERGEABLE_FIELDS
        if name not in restricted
    ]
    fields += [
        (cf.name, cf.display_label)
        for cf in schema.custom_fields("customer")
        if cf.name not in restricted
    ]
    return fields


# Records of other apps that point at a customer (pipelines' deals and converted leads)
# must follow it into the survivor of a merge, or the merge fails on them (a deal's
# customer is protected) or loses them. crm cannot import those apps (DESIGN: accounts <-
# crm <- pipelines <- reports), so they register a participant from AppConfig.ready().


@dataclass(frozen=True)
class MergeParticipant:
    """One app's records that move with a merged customer."""

    key: str
    # move(survivor, others, by) -> how many records now point at the survivor. Runs
    # inside the merge's transaction, before the others are deleted; it writes the
    # records' own history.
    move: Callable[[Customer, list[Customer], User], int]
    # count(customer) -> how many records would move away from this customer.
    count: Callable[[Customer], int]
    # describe(count) -> the merge page's note of what moves, e.g. "3 deals move";
    # None: nothing to show (a link that is only repointed).
    describe: Callable[[int], str] | None = None
    icon: str = "git-merge"  # a vendored Tabler icon (static/vendor/tabler-icons)


_merge_participants: dict[str, MergeParticipant] = {}


def register_merge_participant(participant: MergeParticipant) -> MergeParticipant:
    _merge_participants[participant.key] = participant
    return participant


def merge_counts(customer: Customer) -> dict[str, int]:
    """How many records of each participant would move away from `customer`."""
    return {key: p.count(customer) for key, p in _merge_participants.items()}


def merge_notes(customer: Customer) -> list[tuple[str, str]]:
    """(icon, text) of what the participants would move away from `customer`, for the
    merge page next to the contacts, follow-ups and tasks."""
    return [
        (p.icon, p.describe(p.count(customer)))
        for p in _merge_participants.values()
        if p.describe is not None
    ]


@transaction.atomic
def merge_customers(
    *, survivor: Customer, others: list[Customer], by: User, take: dict[str, int] | None = None
) -> Customer:
    """Fold `others` into `survivor`: their contacts, activities, tasks, history and pool
    events move over, and the registered participants' records (deals, converted leads);
    `take` says, per field, which customer's value to keep."""
    records = [survivor, *others]
    for record in records:
        _require(by, record, "change")
    for record in others:
        _require(by, record, "delete")
    by_id = {r.pk: r for r in records}
    before = snapshot(survivor)
    allowed = {name for name, _label in mergeable_fields(by)}
    custom = dict(survivor.custom or {})
    for record in others:
        # Values only the other record has are kept (also those the user may not see).
        custom = {**(record.custom or {}), **custom}
    for field, source_id in (take or {}).items():
        if field not in allowed or source_id not in by_id:
            raise ValidationError(_("Cannot take “%(field)s” from that record.") % {"field": field})
        source = by_id[source_id]
        if field.startswith("cf_"):
            key = field.removeprefix("cf_")
            if key in (source.custom or {}):
                custom[key] = source.custom[key]
            else:
                custom.pop(key, None)
            continue
        field_name = survivor._meta.get_field(field).attname
        setattr(survivor, field_name, getattr(source, field_name))
    survivor.custom = custom
    survivor.last_activity_at = max(
        (r.last_activity_at for r in records if r.last_activity_at), default=None
    )
    other_ids = [r.pk for r in others]
    survivor.tags.add(*Tag.objects.filter(customers__in=other_ids).distinct())
    if survivor.contacts.filter(is_primary=True).exists():
        Contact.objects.filter(customer_id__in=other_ids).update(is_primary=False)
    Contact.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    Activity.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    Task.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    Change.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    PoolEvent.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    for participant in _merge_participants.values():
        participant.move(survivor, others, by)
    # The others go before the survivor is saved: it may take over their unique values.
    Customer.objects.filter(pk__in=other_ids).delete()
    survivor.full_clean()
    field_values.save_checking_unique(survivor, record_type="customer")
    names = "、".join(r.name for r in others)
    record_change(
        survivor,
        by=by,
        kind=EventKind.MERGED,
        changes=diff(before, snapshot(survivor)).with_raw("merged_ids", None, other_ids),
        note=_("Merged in: %(names)s") % {"names": names},
    )
    return survivor
