"""Phone numbers: parsed with the default region (CN) and stored as E.164.

`138 0013 8000`, `+86 138-0013-8000` and `13800138000` all become `+8613800138000`,
so one stored form matches however a number was typed. What E.164 cannot hold is refused
rather than dropped: an extension ("转 123", "ext. 123"), letters ("1-800-FLOWERS").
"""

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# E.164 numbers this process has produced: normalising one again gives it back, so a
# record's clean() after an import's conversion does not parse every phone twice.
_NORMALISED: dict[str, None] = {}
_NORMALISED_LIMIT = 200_000
_CN_MOBILE = re.compile(r"1(?:[3-689][0-9]|7[0-8])[0-9]{8}")


def normalize_phone(value: str, *, field: str | None = None) -> str:
    """Return `value` as E.164, or raise a ValidationError that names the bad input."""
    raw = (value or "").strip()
    if not raw:
        return ""
    if raw in _NORMALISED:
        return raw
    if _CN_MOBILE.fullmatch(raw) and settings.PHONE_DEFAULT_REGION == "CN":
        # The common case, without a full parse: a mainland mobile number's 11 digits,
        # or the E.164 form of one (a stored number checked again).
        return "+86" + raw
    if raw.startswith("+86") and _CN_MOBILE.fullmatch(raw, 3):
        return raw
    try:
        number = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and number.extension:
        # E.164 has no extension: storing the number would silently drop it.
        error = ValidationError(
            _("“%(value)s” has an extension, which cannot be stored: enter the number alone."),
            code="invalid_phone",
            params={"value": raw},
        )
        raise ValidationError({field: error}) if field else error
    # Letters ("1-800-FLOWERS") would be stored as the digits they stand for.
    if (
        number is None
        or not phonenumbers.is_possible_number(number)
        or any(char.isalpha() for char in raw)
    ):
        error = ValidationError(
            _("“%(value)s” is not a phone number."), code="invalid_phone", params={"value": raw}
        )
        raise ValidationError({field: error}) if field else error
    normalised = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(_NORMALISED) >= _NORMALISED_LIMIT:
        _NORMALISED.clear()
    _NORMALISED[normalised] = None
    return normalised


def format_phone(value: str) -> str:
    """A stored E.164 number in the form people read: national for CN, international otherwise."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return value
    region = phonenumbers.region_code_for_number(number)
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region == settings.PHONE_DEFAULT_REGION
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, fmt)
