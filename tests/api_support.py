"""What the API's tests share: the record types it serves and a rep who works them
through the API (session auth; the token tests have their own)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import DataScope

from .factories import crm_permissions

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def rep(org):
    """The owner, a rep over every record type, own records only."""
    org.owner = org.set_scope(
        org.owner, DataScope.OWN, crm_permissions(("view", "add", "change"), types=TYPES)
    )
    return org.owner


@pytest.fixture
def api(rep):
    client = APIClient()
    client.force_login(rep)
    return client
