"""accounts.phones: the shortcut for mainland mobile numbers gives what a full parse gives."""

import random

import phonenumbers
import pytest
from django.core.exceptions import ValidationError

from accounts import phones


def parsed(raw: str) -> str | None:
    """What phonenumbers alone makes of `raw` (None: not a number to store)."""
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number) or number.extension:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_eleven_digit_numbers_normalise_as_a_full_parse_would():
    generator = random.Random(7)
    for _ in range(20_000):
        raw = "1" + "".join(generator.choice("0123456789") for _ in range(10))
        phones._NORMALISED.clear()
        expected = parsed(raw)
        if expected is None:
            with pytest.raises(ValidationError):
                phones.normalize_phone(raw)
        else:
            assert phones.normalize_phone(raw) == expected, raw
            phones._NORMALISED.clear()
            assert phones.normalize_phone(expected) == expected
        if parsed("+86" + raw) is None:
            with pytest.raises(ValidationError):
                phones.normalize_phone("+86" + raw)


def test_a_stored_number_normalises_to_itself():
    assert phones.normalize_phone("138 0013 8000") == "+8613800138000"
    assert phones.normalize_phone("+8613800138000") == "+8613800138000"
    assert phones.normalize_phone("+44 20 7946 0958") == "+442079460958"
