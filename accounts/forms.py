from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _


class LengthCheckedSignIn:
    """Django's sign-in form sets the username's max_length after the field is built, so
    its validator never checks it: a 5,000-character name reached django-axes, whose
    log of failed attempts cannot store it (a 500). Check it here."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length or 150))


class SignInForm(LengthCheckedSignIn, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "The username or password is not right. Both are case-sensitive; "
            "after %(limit)s failed tries the account is locked for a while."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def get_invalid_login_error(self):
        return ValidationError(
            self.error_messages["invalid_login"],
            code="invalid_login",
            params={"limit": settings.AXES_FAILURE_LIMIT},
        )


class AdminSignInForm(LengthCheckedSignIn, AdminAuthenticationForm):
    """The Django admin's sign-in, with the same length check."""
