from django.conf import settings
from django.utils import translation


class UserLanguageMiddleware:
    """A signed-in user's preferred language wins over cookie and browser.

    The cookie follows the preference, so the sign-in page after signing out stays in
    the language the person last used.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated and bool(user.language)
        if signed_in:
            translation.activate(user.language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if signed_in and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != user.language:
            set_language_cookie(response, user.language)
        return response


def set_language_cookie(response, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
