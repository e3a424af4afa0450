"""Reading ids, numbers and text from a request's parameters: one place, so that a bad
value is ignored, a clear 400 or a form error, never a 500.

Why not `value.isdigit()` and `int(value)`: "²" and "١٢" pass isdigit() but not int();
2**64 passes int() but not PostgreSQL's bigint (nor an OFFSET); NUL bytes pass Python
but not PostgreSQL (ParameterGuardMiddleware answers those for every parameter). Views read
ids and numbers through these helpers, and everything else through Django forms.
"""

from __future__ import annotations

import re

from django.core.exceptions import BadRequest
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

# PostgreSQL's bigint: the largest id (and OFFSET) the database takes.
MAX_ID = 2**63 - 1
# Deeper than any list is long: a page number past it is treated as the last page.
MAX_PAGE = 1_000_000
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_ANY_INTEGER = re.compile(r"[+-]?[0-9]{1,100}")


class BadParameter(BadRequest):
    """A parameter the view cannot work with: a 400 whose message the page shows."""


def parse_int(value, *, minimum: int | None = None, maximum: int | None = MAX_ID) -> int | None:
    """An int written in ASCII digits within [minimum, maximum]; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return None
    return number


def parse_id(value) -> int | None:
    """A record id (a positive bigint), or None."""
    return parse_int(value, minimum=1)


def id_param(params: QueryDict, name: str) -> int | None:
    return parse_id(params.get(name))


def ids_param(params: QueryDict, name: str) -> list[int]:
    """The valid ids among the values of `name` (a bulk action's selected rows)."""
    return [pk for pk in map(parse_id, params.getlist(name)) if pk is not None]


def int_param(
    params: QueryDict, name: str, default: int, *, minimum: int = 0, maximum: int = MAX_ID
) -> int:
    """A number from the parameters, or `default` when it is missing or not one; a value
    past the bounds is held to them (page 10**30 is the last page, not an error)."""
    raw = params.get(name)
    if raw is None or not _ANY_INTEGER.fullmatch(str(raw).strip()):
        return default
    return max(minimum, min(int(str(raw).strip()), maximum))


def page_param(params: QueryDict, name: str = "page") -> int:
    return int_param(params, name, 1, minimum=1, maximum=MAX_PAGE)


def require_id(params: QueryDict, name: str) -> int:
    """An id the request must carry: a 400 saying so otherwise."""
    pk = id_param(params, name)
    if pk is None:
        raise BadParameter(_("The request is missing a valid “%(name)s”.") % {"name": name})
    return pk


# Django admin's "which field the id names" parameter: empty, it reaches
# Model._meta.get_field("") and fails with a 500 (a non-empty unknown one is a 400).
ADMIN_TO_FIELD = "_to_field"


class ParameterGuardMiddleware:
    """Refuses, as a 400 that says why, what no page could take:

    - a NUL byte in any query or form parameter: PostgreSQL cannot store or compare text
      with one ("A string literal cannot contain NUL"), and no person types it. Forms
      would say so field by field; this covers every hand-read parameter too;
    - an empty `_to_field` (Django admin).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        posted = request.POST if request.method == "POST" else None
        for params in (request.GET, posted):
            if params is None:
                continue
            if _has_nul(params):
                raise BadParameter(_("The request contains a character that cannot be stored."))
            if ADMIN_TO_FIELD in params and not params.get(ADMIN_TO_FIELD):
                raise BadParameter(_("The request could not be understood."))
        return self.get_response(request)


def _has_nul(params: QueryDict) -> bool:
    for key, values in params.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return True
    return False
