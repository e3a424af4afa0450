"""Every API error is JSON, in one shape, in the caller's language:

    {"detail": "<what went wrong>", "code": "<machine-readable code>"}

and for invalid input (400, code "invalid") also the messages by field:

    {"detail": "...", "code": "invalid", "errors": {"name": ["..."], "non_field_errors": ["..."]}}

- `exception_handler` (REST_FRAMEWORK's EXCEPTION_HANDLER) shapes what the API views
  raise: DRF's exceptions, Django's Http404 / PermissionDenied / ValidationError /
  BadRequest. Headers DRF adds stay (`Retry-After` on 429, `WWW-Authenticate` on 401).
- `ApiErrorsMiddleware` shapes what never reached a DRF view under /api/: a URL that
  matches nothing (404), a parameter crm.params refused (400), a crash (500).
- `parsers.JSONParser` (REST_FRAMEWORK's only parser) refuses bodies no view could take,
  as 400 / 413 errors of this shape.
"""

from __future__ import annotations

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.fields import get_error_detail
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"
# Headers of an error response that say something to the client, kept when it is
# rewritten as JSON.
KEPT_HEADERS = ("Retry-After", "WWW-Authenticate", "Allow", "Vary")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


def status_message(status: int) -> tuple[str, str]:
    """(detail, code) of an error with no more to say than its status."""
    known = {
        400: (_("The request could not be understood."), "bad_request"),
        401: (_("Authentication is required."), "not_authenticated"),
        403: (_("You do not have permission to do this."), "permission_denied"),
        404: (_("Not found."), "not_found"),
        405: (_("This method is not allowed here."), "method_not_allowed"),
        413: (_("The request is too large."), "too_large"),
        429: (_("Too many requests. Try again later."), "throttled"),
    }
    if status in known:
        return known[status]
    if status >= 500:
        return _("A server error occurred. It has been logged."), "server_error"
    return _("The request could not be handled."), "error"


def body(detail: str, code: str, errors=None) -> dict:
    data = {"detail": str(detail), "code": str(code)}
    if errors is not None:
        data["errors"] = errors
    return data


def _as_api_exception(exc):
    """Django's exceptions as the DRF ones they mean."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(get_error_detail(exc))
    if isinstance(exc, BadRequest | SuspiciousOperation):
        return exceptions.ParseError(str(exc) or None)
    return exc


def _code_of(exc: exceptions.APIException) -> str:
    return str(getattr(exc.detail, "code", None) or exc.default_code)


def _validation_body(exc: exceptions.ValidationError) -> dict:
    detail = exc.detail
    errors = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    messages = errors.get("non_field_errors") if len(errors) == 1 else None
    if messages and isinstance(messages, list) and isinstance(messages[0], str):
        summary = messages[0]
    else:
        summary = _("Some fields are not valid.")
    return body(summary, "invalid", errors)


def exception_handler(exc, context):
    """REST_FRAMEWORK's EXCEPTION_HANDLER: DRF's response, in our shape."""
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a crash: Django logs it, ApiErrorsMiddleware answers JSON 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc)
    elif isinstance(exc.detail, dict | list):
        detail, _code = status_message(response.status_code)
        response.data = body(detail, _code_of(exc), exc.detail)
    else:
        response.data = body(exc.detail, _code_of(exc))
    return response


def _is_json(response) -> bool:
    return (response.get("Content-Type") or "").split(";")[0].strip().endswith("json")


class ApiErrorsMiddleware:
    """Under /api/, an error response that is not JSON yet (Django's 404 page for an
    unknown URL, crm.params' 400, the 500 page) becomes the API's JSON error.

    For a request with an API token, its user's language: no DRF authentication ran."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not is_api_path(request.path_info)
            or _is_json(response)
            or getattr(response, "streaming", False)
        ):
            return response
        with translation.override(_language_for(request)):
            detail, code = status_message(response.status_code)
            rewritten = JsonResponse(
                body(detail, code),
                status=response.status_code,
                json_dumps_params={"ensure_ascii": False},
            )
        for header in KEPT_HEADERS:
            if header in response:
                rewritten[header] = response[header]
        return rewritten


def _language_for(request) -> str | None:
    """The token user's language, else the one the request is already in."""
    from .authentication import presented_token
    from .services import find_token

    try:
        text = presented_token(request)
    except exceptions.APIException:
        text = None
    token = find_token(text) if text else None
    if token is not None and token.is_usable and token.user.is_active and token.user.language:
        return token.user.language
    return translation.get_language()
