"""crm.bulk.insert: what goes in with COPY (PostgreSQL) reads back exactly, ids set."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from crm import bulk
from crm.models import Customer

from .factories import item

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
