import factory

from accounts.models import DataScope, Department, Role, SecurityNotice, User


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"部门{n}")


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role

    name = factory.Sequence(lambda n: f"角色{n}")
    data_scope = DataScope.OWN
    permissions = factory.LazyFunction(list)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    name = factory.Sequence(lambda n: f"用户{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class NoteFactory(factory.django.DjangoModelFactory):
    """A test-only owned record (tests/testapp): stands in for customers, deals, ..."""

    class Meta:
        model = "testapp.Note"

    title = factory.Sequence(lambda n: f"记录{n}")
    owner = factory.SubFactory(UserFactory)


class PooledNoteFactory(NoteFactory):
    """A record type whose unowned rows form a public pool (公海), like customers."""

    class Meta:
        model = "testapp.PooledNote"


class SecurityNoticeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SecurityNotice

    user = factory.SubFactory(UserFactory)
    kind = SecurityNotice.Kind.PASSWORD_CHANGED


# --- CRM records ----------------------------------------------------------------------

CRM_RECORD_TYPES = ("customer", "contact", "activity", "task")


def crm_permissions(actions=("view", "add", "change"), types=CRM_RECORD_TYPES) -> list[str]:
    """Role permissions over the CRM records, e.g. for org.set_scope(user, scope, ...)."""
    return [f"{t}.{a}" for t in types for a in actions]


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.Customer"

    name = factory.Sequence(lambda n: f"客户{n}有限公司")
    owner = factory.SubFactory(UserFactory)


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.Contact"

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"联系人{n}")


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.Activity"

    customer = factory.SubFactory(CustomerFactory)
    content = factory.Sequence(lambda n: f"跟进内容{n}")
    author = factory.LazyAttribute(lambda a: a.customer.owner)


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.Task"

    title = factory.Sequence(lambda n: f"待办{n}")
    assignee = factory.SubFactory(UserFactory)


def give_crm_roles(org, scope="own", actions=("view", "add", "change")):
    """Give the org's four reps (owner, colleague, sub_member, outsider) roles over the CRM
    records with `scope`; the org's attributes are replaced by the reloaded users."""
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), scope, crm_permissions(actions)))
    return org


# --- Configuration ------------------------------------------------------------------------


def custom_field(key: str, field_type: str, **kwargs):
    """A custom field (customer unless said), checked like the admin checks it, saved."""
    from crm.models import CustomField

    kwargs.setdefault("label", key)
    kwargs.setdefault("record_type", "customer")
    field = CustomField(key=key, field_type=field_type, **kwargs)
    field.full_clean()
    field.save()
    return field


def dictionary(code: str, name: str, items):
    """A dictionary with items given as (code, 中文, English), in that order."""
    from crm.models import Dictionary, DictionaryItem

    created = Dictionary.objects.create(code=code, name=name)
    for order, (item_code, label, label_en) in enumerate(items):
        DictionaryItem.objects.create(
            dictionary=created, code=item_code, label=label, label_en=label_en, order=order
        )
    return created
