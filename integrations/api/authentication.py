"""`Authorization: Bearer <token>` (or `Token <token>`): a personal API token.

The request then acts as the token's user, with exactly that user's role — data scope,
permissions, field permissions — and nothing more (`accounts.actors.acting`, so history
says the change came through the token). The user's preferred language is activated
here: UserLanguageMiddleware ran before DRF authenticated the request, when it did not
yet know who was calling.

Refused (401, the JSON error of `errors.exception_handler`): a token that is unknown,
revoked or expired, and one whose user is inactive. A request without the header falls
through to the next authentication class (the browser's session, with its CSRF check).
"""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.actors import ActorKind, acting

from . import services

KEYWORDS = (b"bearer", b"token")


def presented_token(request) -> str | None:
    """The token text of an `Authorization: Bearer …` / `Token …` header; None without
    one (another scheme, or no header). A malformed one is refused."""
    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() not in KEYWORDS:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(
            _("Invalid Authorization header: give one token after “Bearer”."),
            code="invalid_header",
        )
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed(
            _("The API token is not valid."), code="invalid_token"
        ) from None


def activate_language(user) -> None:
    """The user's language for this request's messages, as for a signed-in page."""
    if getattr(user, "language", ""):
        translation.activate(user.language)


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        text = presented_token(request)
        if text is None:
            return None
        token = services.find_token(text)
        if token is None:
            raise exceptions.AuthenticationFailed(
                _("The API token is not valid."), code="invalid_token"
            )
        user = token.user
        if token.is_revoked:
            raise exceptions.AuthenticationFailed(
                _("This API token has been revoked."), code="token_revoked"
            )
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                _("This API token has expired."), code="token_expired"
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(
                _("The token's user is inactive."), code="user_inactive"
            )
        activate_language(user)
        request._request.LANGUAGE_CODE = translation.get_language()
        services.note_use(token, get_client_ip_address(request._request) or None)
        return acting(user, kind=ActorKind.API, id=token.pk, name=token.name), token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer a request without credentials with 401 (not 403).
        return f'{self.keyword} realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The token in the OpenAPI document: an HTTP bearer scheme."""

    target_class = "integrations.api.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": str(
                _(
                    "A personal API token, made on the API tokens page of the user menu: "
                    "`Authorization: Bearer kd_…`. The calls act as the token's user, "
                    "with that user's data scope and field permissions."
                )
            ),
        }
