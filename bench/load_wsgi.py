"""The load test's WSGI entry point: crm.wsgi's application, called through a function
named after the page asked for (`page__board`, `page__customer_detail`...), and telling
the load generator what the request cost the server.

- A sampling profiler (py-spy) sees the page in every stack of the request, the
  rendering of a TemplateResponse and the middleware included, which run after the
  view's own frame is gone.
- Each response carries `X-Load-Server: page;cpu ms;queries;sql ms;wall ms`: the worker
  thread's CPU time (time.thread_time: not inflated by waiting for a core or for
  PostgreSQL), the SQL statements run and their wall time, up to the moment Django
  hands the response to gunicorn (the body is rendered by then).

Costs a few microseconds per request and per query.
"""

import re
import time

from django.db import connection

from crm.wsgi import application as django_application

# (page, method or None, path pattern); the first match names the request.
ROUTES = [
    ("sign_in", None, r"/accounts/login/"),
    ("log_follow_up", "POST", r"/customers/\d+/activities/new/"),
    ("customer_detail", "GET", r"/customers/\d+/"),
    ("customer_list", "GET", r"/customers/"),
    ("contact_list", "GET", r"/contacts/"),
    ("lead_list", "GET", r"/leads/"),
    ("deal_list", "GET", r"/deals/"),
    ("board", "GET", r"/pipelines/\d+/board/"),
    ("tasks", "GET", r"/tasks/"),
    ("search", "GET", r"/search/"),
    ("home", "GET", r"/"),
]
COMPILED = [(page, method, re.compile(pattern + r"\Z")) for page, method, pattern in ROUTES]


def _named(page: str):
    def call(environ, start_response):
        return django_application(environ, start_response)

    call.__code__ = call.__code__.replace(co_name=f"page__{page}", co_qualname=f"page__{page}")
    return call


CALLERS = {page: _named(page) for page, _method, _pattern in ROUTES}
OTHER = _named("other")


def application(environ, start_response):
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    page, caller = "other", OTHER
    for name, wanted, pattern in COMPILED:
        if (wanted is None or wanted == method) and pattern.match(path):
            page, caller = name, CALLERS[name]
            break
    sql = [0, 0.0]

    def timed(execute, statement, params, many, context):
        t = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql[0] += 1
            sql[1] += time.perf_counter() - t

    cpu, wall = time.thread_time(), time.perf_counter()

    def reporting_start_response(status, headers, exc_info=None):
        cost = (
            f"{page};{(time.thread_time() - cpu) * 1000:.2f};{sql[0]};{sql[1] * 1000:.2f};"
            f"{(time.perf_counter() - wall) * 1000:.2f}"
        )
        return start_response(status, [*headers, ("X-Load-Server", cost)], exc_info)

    with connection.execute_wrapper(timed):
        return caller(environ, reporting_start_response)
