"""accounts.access: who sees and changes which records (DESIGN rule 1).

The `org` fixture (tests/conftest.py):

    销售部 (sales)
    ├── 销售一部 (team1): owner, colleague
    │   └── 销售一部-华东 (team1_east): sub_member
    └── 销售二部 (team2): outsider
    (no department): admin, a superuser

Each person owns one Note, titled with their username; one Note has no owner.
The viewer in most specs is `owner` (in team1), given a role with the scope under test.
"""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404

from accounts import access
from accounts.models import DataScope, Department, User
from tests.testapp.models import Note, PooledNote

from .conftest import ALL_NOTE_ACTIONS
from .factories import DepartmentFactory, NoteFactory, PooledNoteFactory, UserFactory

ALL_POOLED_ACTIONS = [f"pooled.{a}" for a in access.ACTIONS]
EVERYTHING = ALL_NOTE_ACTIONS + ALL_POOLED_ACTIONS
PEOPLE = ("owner", "colleague", "sub_member", "outsider", "admin")
UNOWNED = "unowned"

# Whose notes `owner` (team1) reaches with each data scope.
REACH = {
    DataScope.OWN: {"owner"},
    DataScope.DEPARTMENT: {"owner", "colleague"},
    DataScope.DEPARTMENT_TREE: {"owner", "colleague", "sub_member"},
    DataScope.ALL: {*PEOPLE, UNOWNED},
}
QUERYSET_METHODS = {
    "view": "visible_to",
    "change": "editable_by",
    "delete": "deletable_by",
    "export": "exportable_by",
}


@pytest.fixture
def notes(org) -> dict[str, Note]:
    """One Note per person, titled with the owner's username, and one unowned Note."""
    found = {name: NoteFactory(title=name, owner=getattr(org, name)) for name in PEOPLE}
    found[UNOWNED] = NoteFactory(title=UNOWNED, owner=None)
    return found


@pytest.fixture
def pooled_notes(org) -> dict[str, PooledNote]:
    """The same for PooledNote, where the unowned record is in the public pool."""
    found = {name: PooledNoteFactory(title=name, owner=getattr(org, name)) for name in PEOPLE}
    found[UNOWNED] = PooledNoteFactory(title=UNOWNED, owner=None)
    return found


def titles(queryset) -> set[str]:
    return set(queryset.values_list("title", flat=True))


def reload(user: User) -> User:
    """A fresh user object, as the next request would load it."""
    return User.objects.select_related("role", "department").get(pk=user.pk)


# --- What each data scope reaches ----------------------------------------------------


@pytest.mark.parametrize("scope", DataScope.values)
@pytest.mark.parametrize("action", QUERYSET_METHODS)
def test_each_scoped_queryset_reaches_exactly_the_scope(org, notes, scope, action):
    viewer = org.set_scope(org.owner, scope)
    queryset = getattr(Note.objects, QUERYSET_METHODS[action])(viewer)
    assert titles(queryset) == REACH[scope]


@pytest.mark.parametrize("scope", DataScope.values)
def test_for_action_is_the_same_filter_as_the_named_methods(org, notes, scope):
    viewer = org.set_scope(org.owner, scope)
    for action, method in QUERYSET_METHODS.items():
        named = getattr(Note.objects, method)(viewer)
        assert titles(Note.objects.for_action(viewer, action)) == titles(named)


def test_department_scope_is_the_viewers_own_department_only(org, notes):
    viewer = org.set_scope(org.sub_member, DataScope.DEPARTMENT)
    assert titles(Note.objects.visible_to(viewer)) == {"sub_member"}


def test_department_tree_from_the_top_reaches_every_sub_department(org, notes):
    manager = org.set_scope(UserFactory(department=org.sales), DataScope.DEPARTMENT_TREE)
    NoteFactory(title="manager", owner=manager)
    assert titles(Note.objects.visible_to(manager)) == {
        "manager",
        "owner",
        "colleague",
        "sub_member",
        "outsider",
    }


def test_department_tree_from_a_leaf_is_just_that_department(org, notes):
    viewer = org.set_scope(org.sub_member, DataScope.DEPARTMENT_TREE)
    assert titles(Note.objects.visible_to(viewer)) == {"sub_member"}


def test_a_view_only_role_sees_its_scope_but_may_change_delete_and_export_nothing(org, notes):
    reader = org.set_scope(org.owner, DataScope.DEPARTMENT, permissions=["note.view"])
    assert titles(Note.objects.visible_to(reader)) == {"owner", "colleague"}
    assert not Note.objects.editable_by(reader).exists()
    assert not Note.objects.deletable_by(reader).exists()
    assert not Note.objects.exportable_by(reader).exists()


def test_each_action_needs_its_own_permission(org, notes):
    viewer = org.set_scope(
        org.owner, DataScope.DEPARTMENT, permissions=["note.view", "note.export"]
    )
    assert titles(Note.objects.exportable_by(viewer)) == {"owner", "colleague"}
    assert not Note.objects.editable_by(viewer).exists()


@pytest.mark.parametrize("action", ["change", "delete", "export"])
def test_changing_deleting_or_exporting_needs_view_too(org, notes, action):
    blind = org.set_scope(org.owner, DataScope.ALL, permissions=[f"note.{action}"])
    assert not access.has_permission(blind, "note", action)
    assert not Note.objects.for_action(blind, action).exists()
    assert not access.can(blind, notes["owner"], action)


def test_adding_does_not_need_view(org, notes):
    blind = org.set_scope(org.owner, DataScope.OWN, permissions=["note.add"])
    assert access.has_permission(blind, "note", "add")


# --- Who sees nothing, and who sees everything ---------------------------------------


def test_a_role_without_view_permission_sees_nothing_not_even_own_records(org, notes):
    viewer = org.set_scope(org.owner, DataScope.ALL, permissions=["note.add", "note.export"])
    assert not access.has_permission(viewer, "note", "view")
    assert not Note.objects.visible_to(viewer).exists()
    assert not access.can(viewer, notes["owner"], "view")


def test_a_user_without_a_role_sees_nothing(org, notes):
    nobody = reload(UserFactory(department=org.team1, role=None))
    NoteFactory(title="mine", owner=nobody)
    assert not access.has_permission(nobody, "note", "view")
    assert not Note.objects.visible_to(nobody).exists()


def test_a_superuser_without_a_role_sees_everything(org, notes):
    assert org.admin.role is None
    assert access.has_permission(org.admin, "note", "view")
    assert access.data_scope(org.admin) == DataScope.ALL
    assert titles(Note.objects.visible_to(org.admin)) == REACH[DataScope.ALL]
    assert titles(Note.objects.editable_by(org.admin)) == REACH[DataScope.ALL]


def test_an_inactive_user_sees_nothing(org, notes):
    viewer = org.set_scope(org.owner, DataScope.ALL)
    viewer.is_active = False
    assert not access.has_permission(viewer, "note", "view")
    assert not Note.objects.visible_to(viewer).exists()
    assert not access.can(viewer, notes["owner"], "view")


def test_an_inactive_superuser_sees_nothing(org, notes):
    org.admin.is_active = False
    assert not Note.objects.visible_to(org.admin).exists()


def test_an_anonymous_visitor_sees_nothing(notes):
    anonymous = AnonymousUser()
    assert not access.has_permission(anonymous, "note", "view")
    for method in QUERYSET_METHODS.values():
        assert not getattr(Note.objects, method)(anonymous).exists()
    assert not access.can(anonymous, notes["unowned"], "view")


def test_a_user_without_a_department_and_department_scope_sees_own_records_only(org, notes):
    for scope in (DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE):
        loner = org.set_scope(UserFactory(department=None), scope)
        NoteFactory(title=f"loner-{scope}", owner=loner)
        assert titles(Note.objects.visible_to(loner)) == {f"loner-{scope}"}
        assert list(access.users_in_scope(loner)) == [loner]


# --- Adding, unknown actions ---------------------------------------------------------


def test_add_is_not_limited_by_the_scope(org, notes):
    rep = org.set_scope(org.owner, DataScope.OWN)
    assert access.has_permission(rep, "note", "add")
    assert access.can(rep, notes["outsider"], "add")
    assert titles(Note.objects.for_action(rep, "add")) == REACH[DataScope.ALL]


def test_add_still_needs_the_add_permission(org, notes):
    reader = org.set_scope(org.owner, DataScope.ALL, permissions=["note.view"])
    assert not access.has_permission(reader, "note", "add")
    assert not access.can(reader, notes["owner"], "add")
    assert not Note.objects.for_action(reader, "add").exists()


def test_an_unknown_action_is_a_programming_error(org, notes):
    rep = org.set_scope(org.owner, DataScope.ALL)
    with pytest.raises(ValueError, match="publish"):
        access.has_permission(rep, "note", "publish")
    with pytest.raises(ValueError):
        Note.objects.for_action(rep, "publish")
    with pytest.raises(ValueError):
        access.can(rep, notes["owner"], "publish")
    with pytest.raises(ValueError):
        access.get_object_for_user_or_404(rep, Note, "publish", pk=notes["owner"].pk)


def test_an_unregistered_model_is_refused(org):
    with pytest.raises(LookupError):
        access.scope_queryset(Department.objects.all(), org.admin)


# --- can() agrees with the querysets -------------------------------------------------


def _viewer(org, kind: str):
    """The person asking, for each kind of viewer the consistency check covers."""
    if kind in DataScope.values:
        return org.set_scope(org.owner, kind, permissions=EVERYTHING)
    if kind == "superuser":
        return org.admin
    if kind == "anonymous":
        return AnonymousUser()
    if kind == "no role":
        org.owner.role = None
        org.owner.save(update_fields=["role"])
        return reload(org.owner)
    if kind == "view only, department":
        return org.set_scope(
            org.owner,
            DataScope.DEPARTMENT,
            permissions=["note.view", "pooled.view"],
        )
    if kind == "no view, department tree":
        return org.set_scope(
            org.owner,
            DataScope.DEPARTMENT_TREE,
            permissions=[p for p in EVERYTHING if not p.endswith(".view")],
        )
    if kind == "no department, department tree":
        return org.set_scope(
            UserFactory(username="loner"), DataScope.DEPARTMENT_TREE, permissions=EVERYTHING
        )
    if kind == "inactive, all":
        viewer = org.set_scope(org.owner, DataScope.ALL, permissions=EVERYTHING)
        viewer.is_active = False
        return viewer
    raise AssertionError(kind)


VIEWER_KINDS = [
    *DataScope.values,
    "superuser",
    "anonymous",
    "no role",
    "view only, department",
    "no view, department tree",
    "no department, department tree",
    "inactive, all",
]


@pytest.mark.parametrize("action", access.ACTIONS)
@pytest.mark.parametrize("model", [Note, PooledNote], ids=["note", "pooled"])
@pytest.mark.parametrize("kind", VIEWER_KINDS)
def test_can_agrees_with_the_querysets(org, notes, pooled_notes, kind, model, action):
    viewer = _viewer(org, kind)
    in_queryset = set(model.objects.for_action(viewer, action).values_list("pk", flat=True))
    records = list(model.objects.all())
    assert len(records) == len(PEOPLE) + 1
    for record in records:
        assert access.can(viewer, record, action) == (record.pk in in_queryset), (
            f"{kind} / {action} / {record.title}"
        )


# --- get_object_for_user_or_404 ------------------------------------------------------


def test_get_object_returns_a_record_inside_the_scope(org, notes):
    viewer = org.set_scope(org.owner, DataScope.DEPARTMENT)
    found = access.get_object_for_user_or_404(viewer, Note, pk=notes["colleague"].pk)
    assert found == notes["colleague"]
    editable = access.get_object_for_user_or_404(viewer, Note, "change", pk=notes["owner"].pk)
    assert editable == notes["owner"]


def test_get_object_outside_the_scope_is_a_404_never_a_403(org, notes):
    viewer = org.set_scope(org.owner, DataScope.DEPARTMENT)
    for name in ("sub_member", "outsider", "admin", UNOWNED):
        with pytest.raises(Http404):
            access.get_object_for_user_or_404(viewer, Note, pk=notes[name].pk)
    # Http404 is not a PermissionDenied in disguise: nothing says the record exists.
    assert not issubclass(Http404, PermissionDenied)


def test_get_object_for_an_action_the_role_lacks_is_a_404(org, notes):
    reader = org.set_scope(org.owner, DataScope.ALL, permissions=["note.view"])
    assert access.get_object_for_user_or_404(reader, Note, "view", pk=notes["owner"].pk)
    for action in ("change", "delete", "export"):
        with pytest.raises(Http404):
            access.get_object_for_user_or_404(reader, Note, action, pk=notes["owner"].pk)


def test_get_object_accepts_a_queryset(org, notes):
    viewer = org.set_scope(org.owner, DataScope.ALL)
    narrowed = Note.objects.filter(title__startswith="o")
    assert access.get_object_for_user_or_404(viewer, narrowed, pk=notes["owner"].pk)
    with pytest.raises(Http404):
        access.get_object_for_user_or_404(viewer, narrowed, pk=notes["colleague"].pk)


def test_get_object_for_an_anonymous_visitor_is_a_404(notes):
    with pytest.raises(Http404):
        access.get_object_for_user_or_404(AnonymousUser(), Note, pk=notes[UNOWNED].pk)


# --- Unowned records: the public pool vs. plain unowned rows --------------------------


@pytest.mark.parametrize("scope", DataScope.values)
def test_pool_records_are_visible_to_every_scope(org, pooled_notes, scope):
    viewer = org.set_scope(org.owner, scope, permissions=ALL_POOLED_ACTIONS)
    assert UNOWNED in titles(PooledNote.objects.visible_to(viewer))
    assert access.can(viewer, pooled_notes[UNOWNED], "view")


@pytest.mark.parametrize("scope", [DataScope.OWN, DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE])
def test_pool_records_are_not_editable_below_scope_all(org, pooled_notes, scope):
    viewer = org.set_scope(org.owner, scope, permissions=ALL_POOLED_ACTIONS)
    for method in ("editable_by", "deletable_by", "exportable_by"):
        assert UNOWNED not in titles(getattr(PooledNote.objects, method)(viewer))
    assert not access.can(viewer, pooled_notes[UNOWNED], "change")


def test_pool_records_are_editable_with_scope_all(org, pooled_notes):
    viewer = org.set_scope(org.owner, DataScope.ALL, permissions=ALL_POOLED_ACTIONS)
    assert UNOWNED in titles(PooledNote.objects.editable_by(viewer))
    assert access.can(viewer, pooled_notes[UNOWNED], "change")


def test_pool_records_still_need_the_view_permission(org, pooled_notes):
    viewer = org.set_scope(org.owner, DataScope.ALL, permissions=ALL_NOTE_ACTIONS)
    assert not PooledNote.objects.visible_to(viewer).exists()


def test_the_pool_does_not_widen_the_scope_for_owned_records(org, pooled_notes):
    viewer = org.set_scope(org.owner, DataScope.OWN, permissions=ALL_POOLED_ACTIONS)
    assert titles(PooledNote.objects.visible_to(viewer)) == {"owner", UNOWNED}


@pytest.mark.parametrize("scope", [DataScope.OWN, DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE])
def test_an_unowned_non_pool_record_is_invisible_below_scope_all(org, notes, scope):
    viewer = org.set_scope(org.owner, scope)
    assert UNOWNED not in titles(Note.objects.visible_to(viewer))
    assert not access.can(viewer, notes[UNOWNED], "view")


def test_an_unowned_non_pool_record_is_visible_with_scope_all(org, notes):
    viewer = org.set_scope(org.owner, DataScope.ALL)
    assert UNOWNED in titles(Note.objects.visible_to(viewer))


# --- Records follow their owner ------------------------------------------------------


def test_moving_people_between_departments_changes_what_a_manager_sees(org, notes):
    manager = org.set_scope(org.owner, DataScope.DEPARTMENT)
    assert titles(Note.objects.visible_to(manager)) == {"owner", "colleague"}

    org.outsider.department = org.team1
    org.outsider.save(update_fields=["department"])
    org.colleague.department = org.team2
    org.colleague.save(update_fields=["department"])

    assert titles(Note.objects.visible_to(manager)) == {"owner", "outsider"}
    assert access.can(manager, Note.objects.get(title="outsider"), "change")
    assert not access.can(manager, Note.objects.get(title="colleague"), "change")


def test_a_manager_who_moves_sees_the_new_department(org, notes):
    manager = org.set_scope(org.owner, DataScope.DEPARTMENT)
    manager.department = org.team2
    manager.save(update_fields=["department"])
    assert titles(Note.objects.visible_to(reload(manager))) == {"owner", "outsider"}


# --- users_in_scope ------------------------------------------------------------------


@pytest.mark.parametrize("scope", DataScope.values)
def test_users_in_scope(org, scope):
    viewer = org.set_scope(org.owner, scope)
    expected = REACH[scope] - {UNOWNED}
    assert {u.username for u in access.users_in_scope(viewer)} == expected


def test_users_in_scope_leaves_out_inactive_people(org):
    viewer = org.set_scope(org.owner, DataScope.DEPARTMENT)
    org.colleague.is_active = False
    org.colleague.save(update_fields=["is_active"])
    assert {u.username for u in access.users_in_scope(viewer)} == {"owner"}


def test_users_in_scope_for_a_superuser_is_everyone_active(org):
    UserFactory(username="gone", is_active=False)
    assert {u.username for u in access.users_in_scope(org.admin)} == set(PEOPLE)


# --- The department tree -------------------------------------------------------------


@pytest.fixture
def deep_tree(db) -> dict[str, Department]:
    """
    root
    ├── a
    │   ├── a1
    │   │   └── a1x
    │   │       └── a1x-deep
    │   └── a2
    └── b
        └── b1
    other
    """
    tree = {"root": DepartmentFactory(name="root"), "other": DepartmentFactory(name="other")}
    for parent, name in [
        ("root", "a"),
        ("root", "b"),
        ("a", "a1"),
        ("a", "a2"),
        ("a1", "a1x"),
        ("a1x", "a1x-deep"),
        ("b", "b1"),
    ]:
        tree[name] = DepartmentFactory(name=name, parent=tree[parent])
    return tree


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("root", {"root", "a", "a1", "a1x", "a1x-deep", "a2", "b", "b1"}),
        ("a", {"a", "a1", "a1x", "a1x-deep", "a2"}),
        ("a1", {"a1", "a1x", "a1x-deep"}),
        ("a1x-deep", {"a1x-deep"}),
        ("b", {"b", "b1"}),
        ("other", {"other"}),
    ],
)
def test_subtree_ids(deep_tree, django_assert_num_queries, root, expected):
    with django_assert_num_queries(1):
        ids = Department.objects.subtree_ids(deep_tree[root].pk)
    assert ids == {deep_tree[name].pk for name in expected}


def test_path_display_runs_from_the_root(deep_tree):
    assert deep_tree["a1x-deep"].path_display == "root / a / a1 / a1x / a1x-deep"


def test_a_department_cannot_go_under_its_own_descendant(deep_tree):
    a = deep_tree["a"]
    for descendant in ("a1", "a1x-deep"):
        a.parent = deep_tree[descendant]
        with pytest.raises(ValidationError) as raised:
            a.clean()
        assert "parent" in raised.value.message_dict


def test_a_department_cannot_go_under_itself(deep_tree):
    a = deep_tree["a"]
    a.parent = a
    with pytest.raises(ValidationError) as raised:
        a.full_clean()
    assert "parent" in raised.value.message_dict


def test_a_department_may_move_to_another_branch(deep_tree):
    a1 = deep_tree["a1"]
    a1.parent = deep_tree["b1"]
    a1.full_clean()
    a1.parent = None
    a1.full_clean()
    DepartmentFactory.build(name="new", parent=deep_tree["a1x-deep"]).full_clean()


def test_department_tree_scope_follows_a_deeper_tree(org, deep_tree):
    manager = org.set_scope(UserFactory(department=deep_tree["a"]), DataScope.DEPARTMENT_TREE)
    deep_rep = UserFactory(department=deep_tree["a1x-deep"])
    b_rep = UserFactory(department=deep_tree["b1"])
    NoteFactory(title="deep", owner=deep_rep)
    NoteFactory(title="b", owner=b_rep)
    assert titles(Note.objects.visible_to(manager)) == {"deep"}


# --- Query counts --------------------------------------------------------------------


def test_visible_to_costs_at_most_one_query_for_the_department_tree(
    org, notes, django_assert_max_num_queries
):
    manager = org.set_scope(org.owner, DataScope.DEPARTMENT_TREE)
    with django_assert_max_num_queries(1):
        queryset = Note.objects.visible_to(manager)
    with django_assert_max_num_queries(1):
        found = list(queryset)
    assert {note.title for note in found} == REACH[DataScope.DEPARTMENT_TREE]


def test_the_department_tree_is_looked_up_once_per_user_object(
    org, notes, django_assert_num_queries
):
    manager = org.set_scope(org.owner, DataScope.DEPARTMENT_TREE)
    Note.objects.visible_to(manager)
    with django_assert_num_queries(0):
        Note.objects.editable_by(manager)
        Note.objects.exportable_by(manager)


@pytest.mark.parametrize("scope", [DataScope.OWN, DataScope.DEPARTMENT, DataScope.ALL])
def test_other_scopes_build_the_queryset_without_a_query(
    org, notes, django_assert_num_queries, scope
):
    viewer = org.set_scope(org.owner, scope)
    with django_assert_num_queries(0):
        queryset = Note.objects.visible_to(viewer)
    with django_assert_num_queries(1):
        list(queryset)


# --- visible_through: what a team did, without the other owner paths' joins ------------


@pytest.mark.parametrize(
    "scope", [DataScope.OWN, DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE, DataScope.ALL]
)
def test_visible_through_is_visible_to_narrowed_to_the_people_in_scope(org, scope):
    from crm.models import Activity, Task

    from .factories import ActivityFactory, CustomerFactory, TaskFactory, give_crm_roles

    give_crm_roles(org, scope=scope)
    people = [org.owner, org.colleague, org.sub_member, org.outsider, org.admin]
    gone = UserFactory(username="gone", department=org.team1, is_active=False)
    for author in [*people, gone]:
        for owner in [*people, None]:
            customer = CustomerFactory(owner=owner)
            ActivityFactory(customer=customer, author=author)
            TaskFactory(customer=customer, assignee=author)
        ActivityFactory(customer=None, author=author)
    for viewer in people:
        in_scope = access.users_in_scope(viewer)
        for model, path in ((Activity, "author"), (Task, "assignee")):
            expected = set(
                model.objects.visible_to(viewer)
                .filter(**{f"{path}__in": in_scope.values("pk")})
                .values_list("pk", flat=True)
            )
            found = set(
                access.visible_through(model.objects.all(), viewer, path).values_list(
                    "pk", flat=True
                )
            )
            assert found == expected, (viewer.username, model.__name__)
            assert found  # everyone sees at least their own
        narrowed = access.visible_through(
            Activity.objects.all(), viewer, "author", among=Q(pk=org.sub_member.pk)
        )
        assert set(narrowed.values_list("author_id", flat=True)) <= {org.sub_member.pk}


def test_visible_through_needs_the_view_permission_and_an_owner_path(org):
    from crm.models import Activity

    from .factories import ActivityFactory

    ActivityFactory(author=org.owner)  # the rep role has no CRM permissions
    assert not access.visible_through(Activity.objects.all(), org.owner, "author").exists()
    assert access.visible_through(Activity.objects.all(), org.admin, "author").exists()
    with pytest.raises(ValueError):
        access.visible_through(Activity.objects.all(), org.admin, "contact")


# --- Record types seen through two paths (a task: its assignee or its customer's owner;
# a follow-up: its customer's owner, the pool, or its author) -------------------------


@pytest.mark.parametrize(
    "scope",
    [DataScope.OWN, DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE, DataScope.ALL],
)
def test_tasks_and_follow_ups_are_in_scope_by_either_path_exactly(org, scope):
    """Every combination of assignee (or author) and customer owner, the pool and no
    customer included, against the rule said in Python: `visible_to` lets in exactly
    the rows one of whose people is in the user's scope."""
    from crm.models import Activity, Task

    from .factories import ActivityFactory, CustomerFactory, TaskFactory, crm_permissions

    viewer = org.set_scope(
        org.owner, scope, crm_permissions(("view",), types=("task", "activity", "customer"))
    )
    people = [org.owner, org.colleague, org.sub_member, org.outsider]
    customers = [None, CustomerFactory(owner=None)]  # no customer; the pool
    customers += [CustomerFactory(owner=person) for person in people]
    for person in people:
        for customer in customers:
            TaskFactory(assignee=person, customer=customer)
            if customer is not None:
                ActivityFactory(customer=customer, author=person)
    in_scope = set(access.users_in_scope(viewer).values_list("pk", flat=True))

    def task_visible(task) -> bool:
        owner = task.customer.owner_id if task.customer else None
        return task.assignee_id in in_scope or (owner is not None and owner in in_scope)

    def activity_visible(activity) -> bool:
        owner = activity.customer.owner_id
        return activity.author_id in in_scope or owner is None or owner in in_scope

    tasks = Task.objects.select_related("customer")
    assert {t.pk for t in Task.objects.visible_to(viewer)} == {
        t.pk for t in tasks if task_visible(t)
    }
    activities = Activity.objects.select_related("customer")
    assert {a.pk for a in Activity.objects.visible_to(viewer)} == {
        a.pk for a in activities if activity_visible(a)
    }
