"""Factories of crm: customers and what hangs on them (contacts, activities, tasks), tags,
dictionaries, custom fields and saved views; and the seeded dictionary items tests use.

Each factory saves a row the database and the model's own checks accept (dates within
crm.dates' range, a contact's customer, one primary contact), written directly: no
service runs, so no history or event rows are written. A test of what a service writes
calls the service."""

from __future__ import annotations

import factory
from django.utils import timezone

from crm.models import (
    Activity,
    Contact,
    Customer,
    CustomField,
    Dictionary,
    DictionaryItem,
    SavedView,
    Tag,
    Task,
)

from .accounts import UserFactory

CRM_RECORD_TYPES = ("customer", "contact", "activity", "task")


def crm_permissions(actions=("view", "add", "change"), types=CRM_RECORD_TYPES) -> list[str]:
    """Role permissions over the CRM records, e.g. for org.set_scope(user, scope, ...)."""
    return [f"{t}.{a}" for t in types for a in actions]


def give_crm_roles(org, scope="own", actions=("view", "add", "change")):
    """Give the org's four reps (owner, colleague, sub_member, outsider) roles over the CRM
    records with `scope`; the org's attributes are replaced by the reloaded users."""
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), scope, crm_permissions(actions)))
    return org


# --- Dictionaries and tags -----------------------------------------------------------------


class DictionaryFactory(factory.django.DjangoModelFactory):
    """A dictionary; one whose code exists already (the seeded ones: customer_source,
    activity_kind, lost_reason, ...) is that one, not a second."""

    class Meta:
        model = Dictionary
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"dictionary_{n}")
    name = factory.Sequence(lambda n: f"字典{n}")


class DictionaryItemFactory(factory.django.DjangoModelFactory):
    """An item of a dictionary; an existing code is that item, e.g. the seeded call:
    DictionaryItemFactory(dictionary__code="activity_kind", code="call")."""

    class Meta:
        model = DictionaryItem
        django_get_or_create = ("dictionary", "code")

    dictionary = factory.SubFactory(DictionaryFactory)
    code = factory.Sequence(lambda n: f"item_{n}")
    label = factory.Sequence(lambda n: f"选项{n}")
    order = factory.Sequence(lambda n: n)


def item(dictionary: str, code: str) -> DictionaryItem:
    """A seeded (or earlier created) item by its dictionary's code and its own."""
    return DictionaryItem.objects.get(dictionary__code=dictionary, code=code)


def dictionary(code: str, name: str, items) -> Dictionary:
    """A dictionary with items given as (code, 中文, English), in that order."""
    created = DictionaryFactory(code=code, name=name)
    for order, (item_code, label, label_en) in enumerate(items):
        DictionaryItemFactory(
            dictionary=created, code=item_code, label=label, label_en=label_en, order=order
        )
    return created


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"标签{n}")


# --- Customers and what hangs on them ----------------------------------------------------------


class CustomerFactory(factory.django.DjangoModelFactory):
    """A customer with an owner (owner=None: in the public pool); tags=[...] adds tags."""

    class Meta:
        model = Customer
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"客户{n}有限公司")
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def tags(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.tags.add(*extracted)


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"联系人{n}")


class ActivityFactory(factory.django.DjangoModelFactory):
    """A follow-up on a customer, logged by its owner now unless said otherwise; for a
    lead's or a deal's, pass customer=None (or the deal's) and subject=the record."""

    class Meta:
        model = Activity

    customer = factory.SubFactory(CustomerFactory)
    content = factory.Sequence(lambda n: f"跟进内容{n}")
    author = factory.LazyAttribute(lambda a: a.customer.owner if a.customer else None)
    occurred_at = factory.LazyFunction(timezone.now)


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"待办{n}")
    assignee = factory.SubFactory(UserFactory)


class SavedViewFactory(factory.django.DjangoModelFactory):
    """A person's own saved list view (shared=True: everyone's)."""

    class Meta:
        model = SavedView

    name = factory.Sequence(lambda n: f"视图{n}")
    record_type = "customer"
    owner = factory.SubFactory(UserFactory)
    query = ""


# --- Configuration ------------------------------------------------------------------------


class CustomFieldFactory(factory.django.DjangoModelFactory):
    """A custom field (a customer's text field unless said), checked as the admin checks
    it (full_clean) before it is saved."""

    class Meta:
        model = CustomField

    record_type = "customer"
    key = factory.Sequence(lambda n: f"field_{n}")
    label = factory.LazyAttribute(lambda f: f.key)
    field_type = "text"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        field = model_class(*args, **kwargs)
        field.full_clean()
        field.save()
        return field


def custom_field(key: str, field_type: str, **kwargs) -> CustomField:
    """A custom field (customer unless said), checked like the admin checks it, saved."""
    return CustomFieldFactory(key=key, field_type=field_type, **kwargs)
