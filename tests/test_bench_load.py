"""The load test's own parts (bench/load.py, bench/load_wsgi.py): the server names each
request's page and reports its cost, the profile is split by page, and the write check
compares what the server accepted with what the database holds."""

from io import BytesIO

import pytest
from django.core import signals
from django.db import close_old_connections

from bench import load, load_wsgi
from tests.factories.crm import ActivityFactory


def call(path: str, method: str = "GET") -> tuple[str, dict]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.input": BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": BytesIO(),
    }
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    # As Django's test client does: the test's connection (and transaction) stays open.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = load_wsgi.application(environ, start_response)
        b"".join(response)
        response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"]


@pytest.mark.django_db
def test_every_response_says_which_page_it_was_and_what_it_cost():
    status, headers = call("/healthz")
    page, cpu, queries, sql_ms, wall_ms = headers["X-Load-Server"].split(";")
    assert status.startswith("200")
    assert page == "other"
    assert int(queries) == 1  # the health check's SELECT 1
    assert float(cpu) >= 0 and float(sql_ms) >= 0 and float(wall_ms) >= float(sql_ms)


@pytest.mark.django_db
def test_pages_are_named_by_path_and_method():
    assert call("/customers/")[1]["X-Load-Server"].startswith("customer_list;")
    assert call("/customers/12/")[1]["X-Load-Server"].startswith("customer_detail;")
    assert call("/customers/12/activities/new/", "POST")[1]["X-Load-Server"].startswith(
        "log_follow_up;"
    )
    assert call("/pipelines/3/board/")[1]["X-Load-Server"].startswith("board;")


def test_the_profile_is_split_by_page_and_gunicorn_time_kept_apart(tmp_path):
    raw = tmp_path / "profile.txt"
    worker = 'process 2:"gunicorn";SyncWorker.handle (gunicorn/workers/sync.py:2)'
    board = f"{worker};page__board (bench/load_wsgi.py:50);board (pipelines/views_board.py:227)"
    raw.write_text(
        "\n".join(
            [
                f"{board};render (django/template/base.py:1) 30",
                f"{board};_execute (django/db/backends/utils.py:105) 10",
                f"{worker};page__search (bench/load_wsgi.py:50);search (crm/views/search.py:14) 10",
                f"{worker};close_graceful (gunicorn/util.py:312) 5",
                'process 1:"master";Arbiter.wait_for_signals (gunicorn/arbiter.py:1) 500',
            ]
        ),
        encoding="utf-8",
    )
    summary = load.summarise_profile(raw)
    assert "55 samples, 91% in Django" in summary
    assert "close_graceful 9%" in summary
    section = summary.split("\nboard: ")[1].split("\nsearch: ")[0]
    assert section.startswith("80% of the samples")
    assert "75%  templates" in section and "25%  SQL: waiting on PostgreSQL" in section
    assert "board (pipelines/views_board.py:227)" in section


@pytest.mark.django_db
def test_the_write_check_finds_missing_doubled_and_unanswered_follow_ups():
    run = "20261207120000"
    for marker in ("0-1", "0-2", "0-2", "1-1", "2-1"):
        ActivityFactory(content=f"电话沟通。 [load {run} {marker}]")
    ActivityFactory(content="[load 20261207115959 0-3]")  # an earlier run's

    writes = load.check_writes(
        {
            "sent": [f"[load {run} {m}]" for m in ("0-1", "0-2", "0-3", "1-1", "1-2", "2-1")],
            "posted": [f"[load {run} {m}]" for m in ("0-1", "0-2", "0-3")],
            "post_failed": [f"[load {run} 1-1]", f"[load {run} 1-2]"],
        },
        run,
    )

    assert writes["stored"] == 5
    assert writes["missing"] == [f"[load {run} 0-3]"]
    assert writes["twice"] == [f"[load {run} 0-2]"]
    assert writes["stored_though_refused"] == [f"[load {run} 1-1]"]
    assert writes["unanswered_stored"] == [f"[load {run} 2-1]"]
