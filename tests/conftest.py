"""Shared fixtures: a small organisation whose people test every rule.

销售部 (sales)
├── 销售一部 (team1): owner, colleague
│   └── 销售一部-华东 (team1_east): sub_member
└── 销售二部 (team2): outsider
"""

import importlib
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.utils import translation

from accounts.models import TREE_CACHE_KEY, DataScope, Department, Role, User

from .factories import DepartmentFactory, RoleFactory, UserFactory

PASSWORD = "pass-word-123"

# The API tests' rep and client (tests/api_support.py).
pytest_plugins = ["tests.api_support"]


def edit(field: str, old, new):
    """A one-field change for history fixtures: the same value shown and raw."""
    from crm.services.history import Changes

    return Changes.one(field, old, new, old_text=str(old), new_text=str(new))


ALL_NOTE_ACTIONS = [f"note.{a}" for a in ("view", "add", "change", "delete", "export", "import")]


@dataclass
class Org:
    sales: Department
    team1: Department
    team1_east: Department
    team2: Department
    rep_role: Role
    owner: User
    colleague: User
    sub_member: User
    outsider: User
    admin: User

    def set_scope(self, user: User, scope: str, permissions=None) -> User:
        """Give `user` a fresh role with `scope`; returns a reloaded user."""
        role = RoleFactory(
            data_scope=scope,
            permissions=ALL_NOTE_ACTIONS if permissions is None else permissions,
        )
        user.role = role
        user.save(update_fields=["role"])
        return User.objects.select_related("role", "department").get(pk=user.pk)


@pytest.fixture(autouse=True)
def _fresh_department_tree_cache():
    """Each test starts without a cached department tree or custom-field list from an
    earlier test's data (its transaction was rolled back; the cache was not)."""
    from automation.engine import forget_rules
    from crm.dictionary_copy import forget_dictionary_items
    from crm.fields.schema import forget_custom_fields
    from crm.people_copy import forget_people

    cache.delete(TREE_CACHE_KEY)
    forget_custom_fields()
    forget_dictionary_items()
    forget_people()
    forget_rules()
    # Nor a language an earlier test activated: each starts in settings.LANGUAGE_CODE.
    translation.deactivate()
    yield
    cache.delete(TREE_CACHE_KEY)
    forget_custom_fields()
    forget_dictionary_items()
    forget_people()
    forget_rules()
    translation.deactivate()


# Data migrations whose rows (dictionaries, the default pipelines) tests rely on.
MIGRATIONS_ROWS = (
    "crm.migrations.0002_default_dictionaries",
    "crm.migrations.0008_lead_dictionaries",
    "pipelines.migrations.0002_default_pipelines",
)


def seed_migrations_rows() -> None:
    """The rows the data migrations create (each `create` is idempotent)."""
    from django.apps import apps

    for module in MIGRATIONS_ROWS:
        importlib.import_module(module).create(apps, None)


@pytest.fixture(autouse=True)
def _migrations_rows_after_a_flush(request):
    """A transactional test (a live server, a worker process, concurrent sessions) starts
    with the migrations' rows: an earlier transactional test's flush removed them, and
    which test ran before depends on the order (and the process, under xdist)."""
    marker = request.node.get_closest_marker("django_db")
    if (
        "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
        or (marker is not None and marker.kwargs.get("transaction"))
    ):
        request.getfixturevalue("transactional_db")
        seed_migrations_rows()


@pytest.fixture
def org(db) -> Org:
    sales = DepartmentFactory(name="销售部")
    team1 = DepartmentFactory(name="销售一部", parent=sales)
    team1_east = DepartmentFactory(name="销售一部-华东", parent=team1)
    team2 = DepartmentFactory(name="销售二部", parent=sales)
    rep_role = RoleFactory(name="销售代表", data_scope=DataScope.OWN, permissions=ALL_NOTE_ACTIONS)
    return Org(
        sales=sales,
        team1=team1,
        team1_east=team1_east,
        team2=team2,
        rep_role=rep_role,
        owner=UserFactory(username="owner", name="王芳", department=team1, role=rep_role),
        colleague=UserFactory(username="colleague", name="李娜", department=team1, role=rep_role),
        sub_member=UserFactory(
            username="sub_member", name="赵强", department=team1_east, role=rep_role
        ),
        outsider=UserFactory(username="outsider", name="刘洋", department=team2, role=rep_role),
        admin=UserFactory(
            username="admin", name="管理员", is_staff=True, is_superuser=True, role=None
        ),
    )


@pytest.fixture
def english():
    """Texts in English for the test (the admin tests assert English messages)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def admin_client(client, org):
    """The client signed in as the org's superuser, whose pages are in English."""
    org.admin.language = "en"
    org.admin.save(update_fields=["language"])
    client.force_login(org.admin)
    return client
