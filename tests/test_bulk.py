"""crm.bulk.insert: what goes in with COPY (PostgreSQL) reads back exactly, ids set."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crm import bulk
from crm.models import Activity, Customer, Task

from .factories import CustomerFactory, item

NASTY = ["tab\there", "line\nbreak\r\n", "back\\slash \\N", "引号\"'", "😀 emoji", "", "\\t"]


def test_values_read_back_exactly(org):
    now = timezone.now().replace(microsecond=123456)
    level = item("customer_level", "a")
    customers = [
        Customer(
            name=f"客户 {text}",
            address=text,
            owner=org.owner if index % 2 else None,
            level=level if index % 3 else None,
            custom={"note": text, "amount": "12000.50", "n": index, "flag": True, "nested": [text]},
            last_activity_at=now - timedelta(days=index) if index % 2 else None,
        )
        for index, text in enumerate(NASTY)
    ]
    bulk.insert(Customer, customers)
    assert all(c.pk for c in customers) and len({c.pk for c in customers}) == len(NASTY)
    for customer in customers:
        stored = Customer.objects.get(pk=customer.pk)
        for field in ("name", "address", "owner_id", "level_id", "custom", "last_activity_at"):
            assert getattr(stored, field) == getattr(customer, field), field
        assert stored.created_at == customer.created_at
    assert Decimal(Customer.objects.get(pk=customers[0].pk).custom["amount"]) == Decimal("12000.50")
    # The table's sequence moved past the ids taken: the next save gets a new one.
    assert Customer.objects.create(name="之后").pk > max(c.pk for c in customers)


# --- Rows deferred to the end of a unit of work (crm.bulk.deferring) ------------------


def test_outside_a_unit_of_work_nothing_is_deferred(org):
    task = Task(title="马上存", assignee=org.owner)
    assert not bulk.is_deferring()
    assert bulk.defer(task) is False
    assert task.pk is None and not Task.objects.exists()


def test_deferred_rows_go_in_at_the_flush_with_their_keys(org):
    """A task refers to a follow-up deferred before it, still without an id: the
    flush gives the follow-up its id and the task the key to it."""
    customer = CustomerFactory(owner=org.owner)
    with transaction.atomic(), bulk.deferring():
        activity = Activity(customer=customer, author=org.owner, content="电话")
        task = Task(title="回访", assignee=org.owner, customer=customer, activity=activity)
        assert bulk.defer(activity) and bulk.defer(task)
        assert task.created_at is not None  # set as save would
        assert not Task.objects.exists()
        bulk.flush()
        assert Task.objects.get().activity_id == activity.pk is not None


def test_a_row_deferred_in_a_rolled_back_savepoint_is_not_inserted(org):
    with transaction.atomic(), bulk.deferring():
        assert bulk.defer(Task(title="留下", assignee=org.owner))
        with pytest.raises(RuntimeError), transaction.atomic():
            assert bulk.defer(Task(title="撤回", assignee=org.owner))
            raise RuntimeError("rolled back")
        assert bulk.defer(Task(title="之后", assignee=org.owner))
        bulk.flush()
    assert sorted(Task.objects.values_list("title", flat=True)) == ["之后", "留下"]


def test_rows_never_flushed_are_an_error(org):
    with pytest.raises(RuntimeError, match="never flushed"), transaction.atomic(), bulk.deferring():
        bulk.defer(Task(title="忘了", assignee=org.owner))
    assert not Task.objects.exists()


def test_a_row_that_needs_its_id_now_gets_it_from_the_sequence(org):
    with transaction.atomic(), bulk.deferring():
        tasks = [Task(title=f"任务{n}", assignee=org.owner) for n in range(40)]
        taken = [bulk.defer(task, pk=True) for task in tasks]
        if connection.vendor != "postgresql":
            assert taken == [False] * 40  # no sequence to take ids from: saved at once
            for task in tasks:
                task.save()
        else:
            assert all(taken) and len({t.pk for t in tasks}) == 40
            assert not Task.objects.exists()
        ids = sorted(t.pk for t in tasks)
        bulk.flush()
    assert sorted(Task.objects.values_list("pk", flat=True)) == ids
    assert Task.objects.create(title="之后", assignee=org.owner).pk > max(ids)
