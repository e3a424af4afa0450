import math

from axes.helpers import get_client_ip_address, get_cool_off
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

from . import services, throttle
from .forms import SignInForm
from .middleware import set_language_cookie
from .password_reset import PasswordResetForm

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


# --- Forgotten password --------------------------------------------------------------
#
# Django's PasswordReset* views in our look. The page says the same whether or not the
# address belongs to an account (nobody learns who has one), requests are limited per
# IP address and per email address (settings.PASSWORD_RESET_LIMITS), and a link works
# once and for PASSWORD_RESET_TIMEOUT seconds.


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    form_class = PasswordResetForm
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")
    extra_email_context = {
        "brand_name": settings.CRM_SITE_NAME,
        "timeout_hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
    }

    def form_valid(self, form):
        wait = self.throttled(form.cleaned_data["email"])
        if wait:
            form.add_error(
                None,
                _(
                    "Too many password reset requests. Please wait %(minutes)s minutes "
                    "and try again, or ask your administrator to reset your password."
                )
                % {"minutes": throttle.minutes(wait)},
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)

    def throttled(self, email: str) -> int:
        """Seconds to wait (0: go ahead), counting this request for its IP address and
        for the address asked about, whether or not an account has it."""
        ip = get_client_ip_address(self.request) or ""
        limits = settings.PASSWORD_RESET_LIMITS
        by_ip = throttle.hit("password-reset-ip", ip, **limits["ip"])
        by_email = throttle.hit("password-reset-email", email, **limits["email"])
        return max(by_ip, by_email)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["timeout_hours"] = max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
        return context

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            services.record_password_changed(user=form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
