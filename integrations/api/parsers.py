"""The API's one body parser: JSON (DRF's, strict: no NaN or Infinity), refusing what
would otherwise fail later, deep in a view or the database, as a 500:

- a NUL character in any string or key (PostgreSQL stores no text with one);
- nesting deep enough to exhaust the parser (a RecursionError, not a ValueError);
- a body above DATA_UPLOAD_MAX_MEMORY_SIZE (Django checks it for `request.body`, which
  DRF does not read): 413.

Its own module: REST_FRAMEWORK names it, and DRF imports it while `rest_framework.views`
loads.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers


def _contains_nul(data) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (strict: no NaN), refusing what would otherwise fail later."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None and limit else None
        if raw is not None and len(raw) > limit:
            raise TooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = (raw if raw is not None else stream.read()).decode(encoding)
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(
                _("The body is not valid JSON: %(error)s") % {"error": _short(exc)}
            ) from None
        if _contains_nul(data):
            raise exceptions.ParseError(
                _("The request contains a character that cannot be stored.")
            )
        return data


class TooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"

    def __init__(self):
        super().__init__(_("The request is too large."))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return _("nested too deeply")
    return str(exc)[:200]
