from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.forms import StyledFormMixin

from .services import NAME_MAX

# Days until a new token expires ("" : never).
EXPIRY_CHOICES = [
    ("30", _("In 30 days")),
    ("90", _("In 90 days")),
    ("365", _("In a year")),
    ("", _("Never")),
]


class TokenForm(StyledFormMixin, forms.Form):
    name = forms.CharField(
        label=pgettext_lazy("api token", "Name"),
        max_length=NAME_MAX,
        help_text=_("What the token is for, e.g. the script or system that uses it."),
    )
    expires = forms.ChoiceField(
        label=_("Expires"), choices=EXPIRY_CHOICES, initial="90", required=False
    )

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    @property
    def expires_in_days(self) -> int | None:
        value = self.cleaned_data.get("expires")
        return int(value) if value else None
