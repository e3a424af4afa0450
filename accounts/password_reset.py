"""The forgotten-password form: Django's, with each email in its reader's language."""

from __future__ import annotations

from django.contrib.auth import forms as auth_forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _


class PasswordResetForm(auth_forms.PasswordResetForm):
    email = auth_forms.forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=auth_forms.forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        user = context.get("user")
        language = getattr(user, "language", "") or translation.get_language()
        with translation.override(language):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
