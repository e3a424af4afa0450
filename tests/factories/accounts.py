"""Factories of accounts: departments, roles, users, security notices."""

import factory

from accounts.models import DataScope, Department, Role, SecurityNotice, User

PASSWORD = "pass-word-123"


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
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class SecurityNoticeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SecurityNotice

    user = factory.SubFactory(UserFactory)
    kind = SecurityNotice.Kind.PASSWORD_CHANGED
