import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from . import services
from .forms import SignInForm
from .middleware import set_language_cookie

CHOSEN_LANGUAGE_KEY = "chosen_language"


class SignInView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        # A language picked on the sign-in page is a fresh, explicit choice: keep it.
        # (Only this visit's choice: signing out flushes the session, so the next
        # person at a shared computer keeps their own preference.)
        chosen = self.request.session.get(CHOSEN_LANGUAGE_KEY)
        user = form.get_user()
        if chosen in dict(settings.LANGUAGES) and chosen != user.language:
            user.language = chosen
            user.save(update_fields=["language"])
        return super().form_valid(form)


class SignOutView(auth_views.LogoutView):
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("dashboard")

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            services.record_password_changed(user=form.user)
        messages.success(self.request, _("Your password has been changed."))
        return response


@require_POST
def set_language(request):
    """Switch the UI language; a signed-in user keeps the choice across devices."""
    language = request.POST.get("language", "")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if language in dict(settings.LANGUAGES) and check_for_language(language):
        if not request.user.is_authenticated:
            request.session[CHOSEN_LANGUAGE_KEY] = language
        elif request.user.language != language:
            request.user.language = language
            request.user.save(update_fields=["language"])
        set_language_cookie(response, language)
    return response


def locked_out(request, original_response=None, credentials=None):
    """django-axes lockout page (AXES_LOCKOUT_CALLABLE): 429, in the user's language."""
    cool_off = get_cool_off(request)
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": math.ceil(cool_off.total_seconds() / 60) if cool_off else None,
    }
    return render(request, "accounts/locked_out.html", context, status=429)
