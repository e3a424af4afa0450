"""A refused request (403, 404, 400) is logged as one line, once; a 500 keeps its
traceback. Before, each 403 and 404 came with a full traceback, twice with DEBUG on."""

import io
import logging

import pytest
from django.urls import reverse
from django.utils.log import configure_logging

from .factories import CustomerFactory, give_crm_roles


@pytest.fixture
def logs(settings):
    """The project's logging with its console writing to a buffer; DEBUG on, as `make
    run` has it (Django's own console handler only printed then)."""
    settings.DEBUG = True
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    buffer = io.StringIO()
    for handler in logging.getLogger().handlers + logging.getLogger("django").handlers:
        if type(handler) is logging.StreamHandler:  # not pytest's capture handlers
            handler.setStream(buffer)
    yield buffer.getvalue
    settings.DEBUG = False
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


def test_a_404_a_403_and_a_400_are_one_line_each(client, org, logs):
    give_crm_roles(org)
    pool = CustomerFactory(owner=None)
    client.force_login(org.owner)
    assert client.get("/customers/987654/").status_code == 404
    assert client.get(reverse("customers:edit", args=[pool.pk])).status_code == 403
    assert client.get(reverse("search"), {"q": "a\x00"}).status_code == 400
    err = logs()
    assert err.count("Not Found: /customers/987654/") == 1, err
    assert err.count(f"Forbidden (Permission denied): /customers/{pool.pk}/edit/") == 1, err
    # Django writes the 400's (translated) message escaped: count the path it names.
    assert err.count(": /search/") == 1, err
    assert "Traceback" not in err


def test_a_server_error_keeps_its_traceback(logs):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /x/", exc_info=True, extra={"status_code": 500}
        )
    err = logs()
    assert err.count("Internal Server Error: /x/") == 1
    assert "Traceback" in err and "ValueError: boom" in err
