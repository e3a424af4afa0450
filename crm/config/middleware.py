"""Configuration changes made during a request are logged as done by its user."""

from django.urls import NoReverseMatch, reverse

from .log import acting_as


def _admin_prefix() -> str | None:
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return None


class ConfigActorMiddleware:
    """Sets who is acting (the request's user, resolved only if something is logged) and
    where ("admin" under the admin site, else "web"). Goes after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        prefix = _admin_prefix()
        source = "admin" if prefix and request.path.startswith(prefix) else "web"
        with acting_as(getattr(request, "user", None), source):
            return self.get_response(request)
