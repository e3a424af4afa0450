"""Rate limits: API_RATE_LIMIT requests ("120/min") per token, and per person for
session requests, counted in the Django cache (Redis in production, shared by the web
processes). Over the limit: 429 with `Retry-After` and the JSON error."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class ApiRateThrottle(SimpleRateThrottle):
    scope = "api"
    cache_format = "api-throttle:%(scope)s:%(ident)s"

    def get_rate(self) -> str | None:
        # Read on each request (not once at import, as DRF does), so a deployment's and a
        # test's setting applies.
        return getattr(settings, "API_RATE_LIMIT", None) or None

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiToken):
            # The prefix, not the id: unique and never reused for another token.
            ident = f"token:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
