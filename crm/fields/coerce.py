"""Raw values into what a record's field stores: the one coercion path that imports, the
REST API and automation "set field" actions hand their values to.

A spreadsheet cell, a CSV string or a JSON value goes in as it came; out comes the value
the field stores, or a `ValidationError` whose message, in the user's language, names the
value. Nothing is silently altered: a value is converted where its meaning is certain (a
phone Excel stored as the number 13800138000.0 is "13800138000") and refused where it is
not (an 18-digit ID Excel has already rounded, "03/04/2026" without a hint which part is
the day, "12.345" for money kept to the fen, a text too long — never cut short).

Two levels:

- One function per value kind: `to_text`, `to_phone`, `to_integer`, `to_decimal`,
  `to_percent`, `to_date`, `to_datetime`, `to_bool`, `to_tag_names`, and the lookups
  `Options` (choices, dictionary items: `DictionaryOptions`) and `People`. Custom field
  types (crm/fields/types.py) parse with these same functions, so a standard and a custom
  field read "¥12,000" alike, in a form, an import and the API.
- One entry point per record-type field: `coerce_value(record_type, name, raw, user=...)`,
  `coerce_values(...)` for several fields at once (errors keyed by field), and
  `coercer_for(...)`, a converter for a whole column that loads its lookups (dictionary
  items, the people one may assign to) once, so converting a row costs no query. `name` is
  a model field's name, or a custom field's "cf_<key>" (or bare key).

Which converter a standard field gets is derived from its model field, so a new field
needs no code here: many-to-many to `Tag` → tag names; foreign key to `DictionaryItem` →
an active item of the dictionary its `limit_choices_to` names; to `User` → a person in
`accounts.access.users_in_scope(user)`; to another model → a record by id or exact name,
among those the user may see; `choices` → a choice by value or label; `BooleanField`,
`DecimalField` (its max_digits/decimal_places), integer fields (their range),
`DateTimeField`, `DateField`, `URLField` (https:// assumed, as the forms do), and every
other `CharField`/`TextField`/`EmailField` → text. The model field's own validators
(length, email, ranges, the date bounds) run last. A record type overrides a field with
`register_coercer(record_type, name, factory)`, named by the type's spec
(`crm.records.RecordTypeSpec.coercers`): crm's phones, the lead's phone, a deal's win
probability, and pipelines and stages by name. Custom fields go through
`crm.fields.types.form_field`.

What comes out: text as stored; E.164 phones; `int`, `Decimal` (to the field's decimal
places); aware datetimes in the current time zone; `date`; `bool`; model instances for
foreign keys; tag *names* for tags (`crm.services.customers.resolve_tags` creates new
ones); for a custom field its stored JSON form (`types.to_storage`).

Empty values (None, "", only spaces, an empty list) mean "no value": a field that may be
blank gets its empty value ("" for text, None otherwise, [] for tags; a custom field
None, meaning not stored); a field that may not be blank refuses it ("required"), even if
it has a default — whether an empty cell means "keep the current value" or "use the
default" is the caller's choice (an import leaves such cells out). Field permissions are
not checked here: the services keep only what the user may change.

Decisions, each a rule people can predict:

- Text: surrounding spaces (full-width too) are dropped, inner ones kept; NUL characters
  and unpaired surrogates are refused (no database stores them); over the field's
  max_length is refused, never cut.
- A number bound for a text field (Excel stores phones and IDs as numbers) becomes its
  digits when it is whole and below 10^15; a number of 16 or more digits (Excel keeps 15
  significant digits, so it is already rounded) or one Excel shows in E notation is
  refused, asking to format the column as text. Other numbers read as Excel shows them.
- Money and decimals: optional ¥/￥/CNY/RMB/人民币 before, 元 after; 万 (×10⁴) and
  亿 (×10⁸); thousands separators only in groups of three ("1,5" is refused: a decimal
  comma or a typo); a leading minus (also "−"); full-width digits. "k", "w" and "M" are
  refused: in sheets from Chinese teams "1.5w" is 1.5万 and "1.5M" may be either, so the
  message asks for yuan, 万 or 亿. "%" only in percentage fields. More decimal places than
  the field keeps are refused, not rounded (trailing zeros aside); floats from a sheet
  are read with Excel's 15 significant digits.
- Percentages (a deal's win probability): "35%", "35" and 0.35 all mean 35 — a number
  strictly between 0 and 1 is a fraction, as Excel stores a cell formatted as percent;
  whole numbers are percentages (1 means 1%, write 100% or 100 for a hundred), 0..100.
- Dates: 2026-12-01, 2026/12/1, 2026.12.01, 2026年12月1日, 20261201, with or without a
  time of midnight; day and month with the year last (01/12/2026, 01.12.2026) only when
  unambiguous — one part above 12, or both equal — or when the caller passes
  `day_first` (`day_first_in(column)` finds it for a whole column); otherwise refused,
  naming both readings. Numbers 1..2958465 bound for a date are Excel serial dates (60,
  Excel's 1900-02-29, does not exist). A date field refuses a time of day. Always within
  crm.dates.EARLIEST..LATEST.
- Datetimes: the same dates with a time (H:MM, HH:MM:SS[.ffffff], AM/PM, 上午/下午) and
  an optional offset (Z, +08:00); a value without an offset is in the current time zone
  (Asia/Shanghai); a date alone is midnight; an Excel serial's fraction is the time,
  rounded to the second.
- Yes/no: 是/否, 对, 有/无, 不, Y/N, yes/no, true/false, on/off, 1/0, ✓ ✔ √ / ✗ ✘ ×.
- Dictionary items: by code, Chinese label or English label, ignoring case, width
  (full-/half-width) and runs of spaces; only active items (and the record's current
  one); a label two items share is refused, asking for the code.
- People: by username, email or name (姓名), same folding; only people the user may
  assign to (and the record's current one); a name two people share is refused, asking
  for the username; a number is a username first, then an id.
- Tags: split on , ， 、 ; ； and line breaks — not on spaces, a tag may be "Key Account";
  each trimmed and at most the tag name's max length.
- Choices (TextChoices): by value or label, in either language.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Context, Decimal, localcontext
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.phones import normalize_phone

from .. import dates, validation
from ..models import CustomField, Dictionary, DictionaryItem, FieldType, Tag

__all__ = [
    "CoercerFactory",
    "Converter",
    "DictionaryOptions",
    "FieldTarget",
    "Options",
    "People",
    "coerce_value",
    "coerce_values",
    "coercer_for",
    "coercible_fields",
    "day_first_in",
    "fold",
    "is_empty",
    "match_key",
    "percent_coercer",
    "phone_coercer",
    "reference_coercer",
    "register_coercer",
    "to_bool",
    "to_date",
    "to_datetime",
    "to_decimal",
    "to_integer",
    "to_percent",
    "to_phone",
    "to_tag_names",
    "to_text",
]

# --- Messages (each names the value; codes let a caller tell them apart) -----------------

REQUIRED = _("%(field)s cannot be empty.")
NOT_TEXT = _("“%(value)s” is not a text.")
HAS_NUL = _("“%(value)s” contains a NUL character, which cannot be stored.")
BAD_CHARACTERS = _("“%(value)s” contains characters that cannot be stored.")
TOO_LONG = _("“%(value)s” is too long: at most %(limit)d characters (it has %(length)d).")
EXCEL_ROUNDED = _(
    "%(value)s is a number of 16 or more digits, which Excel has already rounded: format "
    "the column as text and enter the values again."
)
NOT_A_NUMBER = _("“%(value)s” is not a number.")
NUMBER_UNIT = _("“%(value)s”: write the amount in yuan, 万 or 亿 (for example 1500 or 1.5万).")
NOT_PERCENT_FIELD = _("“%(value)s” is a percentage; this field takes a number.")
TOO_MANY_PLACES = _("“%(value)s” has more than %(places)d decimal places.")
TOO_LARGE = _("“%(value)s” is too large: at most %(digits)d digits before the decimal point.")
NOT_WHOLE = _("“%(value)s” is not a whole number.")
OUT_OF_RANGE = _("“%(value)s” is out of range: enter a number from %(low)s to %(high)s.")
PERCENT_RANGE = _("“%(value)s” is not a percentage from 0 to 100.")
NOT_A_DATE = _("“%(value)s” is not a date (write it as 2026-12-01).")
NOT_A_DATETIME = _("“%(value)s” is not a date and time (write it as 2026-12-01 14:30).")
AMBIGUOUS_DATE = _("“%(value)s” could be %(first)s or %(second)s: write it as YYYY-MM-DD.")
HAS_TIME = _("“%(value)s” has a time of day; this field takes a date only.")
DATE_OUT_OF_RANGE = _(
    "“%(value)s” is out of range: enter a date between %(earliest)s and %(latest)s."
)
NOT_YES_NO = _("“%(value)s” is not yes or no (write 是 or 否).")
NOT_AN_OPTION = _("“%(value)s” is not one of the options of %(field)s.")
AMBIGUOUS_OPTION = _("“%(value)s” matches more than one option of %(field)s: use its code.")
INACTIVE_OPTION = _("“%(value)s” is no longer in use in %(field)s.")
NOT_ASSIGNABLE = _("“%(value)s” is not someone you may assign records to.")
NOT_A_USER = _("“%(value)s” is not a user who can be chosen here.")
AMBIGUOUS_PERSON = _(
    "More than one person is called “%(value)s”: give the username (%(usernames)s)."
)
NO_SUCH_RECORD = _("No %(model)s “%(value)s” that you may see.")
AMBIGUOUS_RECORD = _("More than one %(model)s is called “%(value)s”: use its id.")
FIELD_ERROR = _("“%(value)s”: %(error)s")

# Every message above names the value; a field's own validators' messages get FIELD_ERROR
# around them (see _named).
_OWN_MESSAGES = frozenset(
    id(message)
    for message in (
        REQUIRED,
        NOT_TEXT,
        HAS_NUL,
        BAD_CHARACTERS,
        TOO_LONG,
        EXCEL_ROUNDED,
        NOT_A_NUMBER,
        NUMBER_UNIT,
        NOT_PERCENT_FIELD,
        TOO_MANY_PLACES,
        TOO_LARGE,
        NOT_WHOLE,
        OUT_OF_RANGE,
        PERCENT_RANGE,
        NOT_A_DATE,
        NOT_A_DATETIME,
        AMBIGUOUS_DATE,
        HAS_TIME,
        DATE_OUT_OF_RANGE,
        NOT_YES_NO,
        NOT_AN_OPTION,
        AMBIGUOUS_OPTION,
        INACTIVE_OPTION,
        NOT_ASSIGNABLE,
        NOT_A_USER,
        AMBIGUOUS_PERSON,
        NO_SUCH_RECORD,
        AMBIGUOUS_RECORD,
        FIELD_ERROR,
    )
)

SHOWN_MAX = 40  # characters of a value a message repeats


def _shown(raw: Any) -> str:
    """The value as a message repeats it: short, printable, as a spreadsheet shows it."""
    if isinstance(raw, float):
        if math.isfinite(raw) and raw.is_integer() and abs(raw) < 1e16:
            return str(int(raw))
        return repr(raw).upper().replace("INF", "Infinity").replace("NAN", "NaN")
    if isinstance(raw, datetime):
        return raw.isoformat(" ", "seconds" if raw.second or raw.microsecond else "minutes")
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, (list, tuple, set)):
        text = "、".join(_shown(part) for part in raw)
    else:
        text = str(raw)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = text.replace("\x00", "\\x00").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def _error(message, code: str, raw: Any, **params) -> ValidationError:
    return ValidationError(message, code=code, params={"value": _shown(raw), **params})


# --- Text -----------------------------------------------------------------------------------

# Full-width ASCII (！ to ～) and the ideographic space, as their half-width selves; ￥ as ¥.
_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xFFE5: 0xA5}


def fold(text: str) -> str:
    """Full-width letters, digits, punctuation and spaces as half-width ones (what a Chinese
    input method types for "１２，０００" is "12,000"). Nothing else changes: superscripts and
    other scripts' digits stay what they are (and are then not digits to a parser)."""
    return text.translate(_WIDTH)


def match_key(text: str) -> str:
    """How two labels are compared: compatibility-normalised, case-folded, spaces
    collapsed ("ＶＩＰ", "vip " and "VIP" match). For matching only, never stored."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def is_empty(raw: Any) -> bool:
    """No value: None, a text of only spaces, or an empty list."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, (list, tuple, set)):
        return not raw
    return False


def _check_storable(text: str, raw: Any) -> None:
    if "\x00" in text:
        raise _error(HAS_NUL, "null_characters_not_allowed", raw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        raise _error(BAD_CHARACTERS, "bad_characters", raw) from None


def _finite(number: int | float | Decimal) -> bool:
    """Not an infinity or a NaN (a signalling one included)."""
    if isinstance(number, Decimal):
        return number.is_finite()
    return isinstance(number, int) or math.isfinite(number)


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("-+").replace(".", "").lstrip("0")
    return len(mantissa)


def _number_text(raw: int | float | Decimal) -> str:
    """A number bound for a text field, as its digits — or refused when Excel has rounded
    it (16+ digits) or shows it in E notation (FACTS.md "Excel numbers")."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _error(NOT_TEXT, "not_text", raw)
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            raise _error(NOT_TEXT, "not_text", raw)
        text = format(raw, "f")
        if abs(raw) >= 10**15:
            raise _error(EXCEL_ROUNDED, "excel_rounded", raw)
        return text
    if isinstance(raw, int) or raw.is_integer():
        if abs(raw) >= 10**15:
            raise _error(EXCEL_ROUNDED, "excel_rounded", raw)
        return str(int(raw))
    text = repr(raw)
    if "e" in text or _significant_digits(text) >= 16:
        raise _error(EXCEL_ROUNDED, "excel_rounded", raw)
    return text


def to_text(raw: Any, *, max_length: int | None = None) -> str:
    """A text as stored: trimmed, storable, within max_length (refused beyond, never cut).
    Numbers become their digits (13800138000.0 → "13800138000"), dates their ISO form."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, bool):
        text = "TRUE" if raw else "FALSE"  # as Excel shows a logical cell
    elif isinstance(raw, (int, float, Decimal)):
        text = _number_text(raw)
    elif isinstance(raw, datetime):
        text = _shown(raw)
    elif isinstance(raw, date):
        text = raw.isoformat()
    else:
        raise _error(NOT_TEXT, "not_text", raw)
    text = text.strip()
    _check_storable(text, raw)
    if max_length is not None and len(text) > max_length:
        raise _error(TOO_LONG, "max_length", text, limit=max_length, length=len(text))
    return text


# A number Excel had, turned into text on the way ("13800138000.0" from a CSV written by
# a script): for a phone the ".0" means nothing, and phonenumbers would read it as a digit.
_FLOAT_TEXT = re.compile(r"\+?[0-9]{5,15}\.0+", re.ASCII)


def to_phone(raw: Any) -> str:
    """A phone number in E.164 (accounts.phones.normalize_phone: CN by default), "" for
    none. A number from a sheet is read as its digits first."""
    text = to_text(raw)
    if _FLOAT_TEXT.fullmatch(text):
        text = text.split(".")[0]
    return normalize_phone(text)


# --- Numbers ----------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"""(?P<sign1>[-+]?)\s*
        (?P<currency>¥|CNY|RMB|人民币)?\s*
        (?P<sign2>[-+]?)\s*
        (?P<number>[0-9.,\s\u00a0\u2009\u202f]*[0-9.])\s*
        (?P<unit>万|亿)?\s*
        (?P<yuan>元)?\s*
        (?P<percent>%)?""",
    re.VERBOSE | re.IGNORECASE,
)
_DIGITS = re.compile(
    r"(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?:[ \u00a0\u2009\u202f][0-9]{3})+)"
    r"(?:\.[0-9]*)?|\.[0-9]+",
    re.ASCII,
)
_UNIT_HINT = re.compile(r"[0-9.]\s*(?:k|w|m|千|百万|千万)\s*元?", re.IGNORECASE)
UNITS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}
DIGITS_LIMIT = 30  # whole digits a number may have where the field sets no limit
PARSE_DIGITS = 60  # digits a number may have at all (no work on a million-digit text)
FLOAT_DIGITS = 15  # what Excel keeps of a number


def _parse_number(raw: Any, *, limit: int = DIGITS_LIMIT) -> tuple[Decimal, bool]:
    """(value, written as a percentage) of a number as people type and sheets hold it.
    `limit`: the whole digits the field takes, for the message on an absurdly long one."""
    if isinstance(raw, bool):
        raise _error(NOT_A_NUMBER, "not_a_number", raw)
    if isinstance(raw, int):
        if abs(raw) >= 10**PARSE_DIGITS:
            raise _error(TOO_LARGE, "max_digits", raw, digits=limit)
        return Decimal(raw), False
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise _error(NOT_A_NUMBER, "not_a_number", raw)
        return Decimal(format(raw, f".{FLOAT_DIGITS}g")), False
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            raise _error(NOT_A_NUMBER, "not_a_number", raw)
        return raw, False
    if not isinstance(raw, str):
        raise _error(NOT_A_NUMBER, "not_a_number", raw)
    text = fold(raw).strip().replace("−", "-")
    if len(text) > 3 * PARSE_DIGITS:
        if re.fullmatch(r"[-+]?[0-9,.\s]+", text):
            raise _error(TOO_LARGE, "max_digits", raw, digits=limit)
        raise _error(NOT_A_NUMBER, "not_a_number", raw)
    match = _NUMBER.fullmatch(text)
    number = match and match["number"].strip()
    if (
        not match
        or not _DIGITS.fullmatch(number)
        or (match["sign1"] and match["sign2"])
        or (match["percent"] and (match["currency"] or match["unit"] or match["yuan"]))
    ):
        if _UNIT_HINT.search(text):
            raise _error(NUMBER_UNIT, "number_unit", raw)
        raise _error(NOT_A_NUMBER, "not_a_number", raw)
    digits = re.sub(r"[,\s\u00a0\u2009\u202f]", "", number)
    if len(digits.split(".")[0]) > PARSE_DIGITS or len(digits) > 2 * PARSE_DIGITS:
        raise _error(TOO_LARGE, "max_digits", raw, digits=limit)
    value = Decimal(digits)
    if match["unit"]:
        with localcontext(prec=4 * PARSE_DIGITS):  # exact, never rounded
            value *= UNITS[match["unit"]]
    if "-" in (match["sign1"], match["sign2"]):
        value = -value
    return value, bool(match["percent"])


def _whole_digits(value: Decimal) -> int:
    return 0 if value == 0 else max(0, value.adjusted() + 1)


def _places(value: Decimal) -> int:
    return 0 if value == 0 else max(0, -value.normalize().as_tuple().exponent)


def _check_digits(
    value: Decimal, raw: Any, *, max_digits: int | None, decimal_places: int | None
) -> Decimal:
    places = _places(value)
    if decimal_places is not None and places > decimal_places:
        raise _error(TOO_MANY_PLACES, "max_decimal_places", raw, places=decimal_places)
    whole = (max_digits - (decimal_places or 0)) if max_digits is not None else DIGITS_LIMIT
    if _whole_digits(value) > whole:
        raise _error(TOO_LARGE, "max_digits", raw, digits=whole)
    if value == 0:
        value = Decimal(0)  # no "-0"
    with localcontext(prec=4 * PARSE_DIGITS):  # adds zeros only: never rounds
        if decimal_places is not None:
            return value.quantize(Decimal(1).scaleb(-decimal_places))
        return value.normalize() if places else value.quantize(Decimal(1))


def to_decimal(
    raw: Any, *, max_digits: int | None = None, decimal_places: int | None = None
) -> Decimal | None:
    """A number such as "¥12,000.00", "12万", "1.2亿", "-3.5" or 38004.01 as an exact
    Decimal (to `decimal_places`); more places than that, or more digits, are refused."""
    if is_empty(raw):
        return None
    whole = DIGITS_LIMIT if max_digits is None else max_digits - (decimal_places or 0)
    value, percent = _parse_number(raw, limit=whole)
    if percent:
        raise _error(NOT_PERCENT_FIELD, "percent", raw)
    return _check_digits(value, raw, max_digits=max_digits, decimal_places=decimal_places)


# The range of each integer model field, whatever the database (SQLite would take more).
INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges
INT64 = INTEGER_RANGES["BigIntegerField"]


def to_integer(
    raw: Any, *, min_value: int | None = INT64[0], max_value: int | None = INT64[1]
) -> int | None:
    """A whole number ("1,234", 12.0, "3万"), within [min_value, max_value] (a 64-bit
    integer unless narrowed)."""
    if is_empty(raw):
        return None
    value, percent = _parse_number(raw)
    if percent:
        raise _error(NOT_PERCENT_FIELD, "percent", raw)
    if value != value.to_integral_value(context=Context(prec=4 * PARSE_DIGITS)):
        raise _error(NOT_WHOLE, "not_whole", raw)
    number = int(value)
    if (min_value is not None and number < min_value) or (
        max_value is not None and number > max_value
    ):
        raise _error(
            OUT_OF_RANGE,
            "out_of_range",
            raw,
            low="−∞" if min_value is None else min_value,
            high="∞" if max_value is None else max_value,
        )
    return number


def to_percent(raw: Any, *, decimal_places: int = 0) -> int | Decimal | None:
    """A percentage from 0 to 100: "35%", "35" and 0.35 (Excel's percent cell) are 35."""
    if is_empty(raw):
        return None
    value, percent = _parse_number(raw, limit=3)
    if not percent and 0 < abs(value) < 1:
        with localcontext(prec=4 * PARSE_DIGITS):
            value *= 100
    if _places(value) > decimal_places:
        if decimal_places == 0:
            raise _error(NOT_WHOLE, "not_whole", raw)
        raise _error(TOO_MANY_PLACES, "max_decimal_places", raw, places=decimal_places)
    if not 0 <= value <= 100:
        raise _error(PERCENT_RANGE, "percent_range", raw)
    if decimal_places == 0:
        return int(value)
    return value.quantize(Decimal(1).scaleb(-decimal_places))


# --- Dates and times ------------------------------------------------------------------------

_YEAR_FIRST = re.compile(
    r"(?P<y>[0-9]{4})(?:"
    r"(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})"
    r"|\s*年\s*(?P<cm>[0-9]{1,2})\s*月\s*(?P<cd>[0-9]{1,2})\s*[日号]?"
    r"|(?P<m8>[0-9]{2})(?P<d8>[0-9]{2})(?![0-9])"
    r")",
    re.ASCII,
)
_YEAR_LAST = re.compile(
    r"(?P<a>[0-9]{1,2})(?P<sep>[-/.])(?P<b>[0-9]{1,2})(?P=sep)(?P<y>[0-9]{4})", re.ASCII
)
_TIME = re.compile(
    r"(?:\s*T\s*|\s+)?(?P<ampm1>上午|下午|AM|PM)?\s*"
    r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r"\s*(?P<ampm2>AM|PM)?"
    r"\s*(?P<tz>Z|[-+][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII | re.IGNORECASE,
)
EXCEL_EPOCH = datetime(1899, 12, 30)
EXCEL_MAX_SERIAL = 2958465  # 9999-12-31


def day_first_in(values: Iterable[Any]) -> bool | None:
    """Whether a column's year-last dates put the day first (01.12.2026), read from the
    values that settle it (a part above 12); None when none does or they disagree. Pass it
    as `day_first` for the column's ambiguous values."""
    day_first = month_first = False
    for raw in values:
        if not isinstance(raw, str):
            continue
        match = _YEAR_LAST.match(fold(raw).strip())
        if match:
            first, second = int(match["a"]), int(match["b"])
            day_first |= first > 12 >= second
            month_first |= second > 12 >= first
    if day_first == month_first:
        return None
    return day_first


class _Moment:
    """A parsed date and optional time of day, before bounds and time zones."""

    def __init__(self, day: date, clock: time | None = None, offset: dt_timezone | None = None):
        self.day, self.clock, self.offset = day, clock, offset


def _date_part(text: str, raw: Any, day_first: bool | None, message, code) -> tuple[date, str]:
    match = _YEAR_FIRST.match(text)
    if match:
        year = int(match["y"])
        month = int(match["m"] or match["cm"] or match["m8"])
        day = int(match["d"] or match["cd"] or match["d8"])
    else:
        match = _YEAR_LAST.match(text)
        if not match:
            raise _error(message, code, raw)
        year, first, second = int(match["y"]), int(match["a"]), int(match["b"])
        if day_first is None:
            if first == second or (first > 12 and second <= 12):
                day_first = True
            elif second > 12 and first <= 12:
                day_first = False
            elif first <= 12 and second <= 12:
                readings = []
                for d, m in ((first, second), (second, first)):
                    try:
                        readings.append(date(year, m, d).isoformat())
                    except ValueError:
                        readings.append("?")
                raise _error(
                    AMBIGUOUS_DATE, "ambiguous_date", raw, first=readings[0], second=readings[1]
                )
            else:
                raise _error(message, code, raw)
        day, month = (first, second) if day_first else (second, first)
    try:
        return date(year, month, day), text[match.end() :]
    except ValueError:
        raise _error(message, code, raw) from None


def _time_part(rest: str, raw: Any, message, code) -> tuple[time | None, dt_timezone | None]:
    if not rest.strip():
        return None, None
    match = _TIME.fullmatch(rest.rstrip())
    if not match or (match["ampm1"] and match["ampm2"]):
        raise _error(message, code, raw)
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    ampm = (match["ampm1"] or match["ampm2"] or "").upper()
    if ampm:
        if not 1 <= hour <= 12:
            raise _error(message, code, raw)
        hour = hour % 12 + (12 if ampm in ("PM", "下午") else 0)
    micro = int((match["f"] or "0")[:6].ljust(6, "0"))
    if hour > 23 or minute > 59 or second > 59:
        raise _error(message, code, raw)
    offset = None
    if match["tz"]:
        tz = match["tz"].upper()
        if tz == "Z":
            offset = UTC
        else:
            digits = tz[1:].replace(":", "").ljust(4, "0")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 14 or minutes > 59:
                raise _error(message, code, raw)
            delta = timedelta(hours=hours, minutes=minutes)
            offset = dt_timezone(-delta if tz[0] == "-" else delta)
    return time(hour, minute, second, micro), offset


def _excel_serial(number: Decimal, raw: Any, message, code) -> _Moment:
    if number == 60:  # Excel's 1900-02-29, a day that never was
        raise _error(message, code, raw)
    days = int(number)
    seconds = round((number - days) * 86400)
    base = EXCEL_EPOCH + timedelta(days=1 if number < 60 else 0)
    moment = base + timedelta(days=days, seconds=int(seconds))
    clock = moment.time() if seconds else None
    return _Moment(moment.date(), clock)


def _parse_moment(raw: Any, day_first: bool | None, *, message, code) -> _Moment:
    if isinstance(raw, datetime):
        if timezone.is_aware(raw):
            return _Moment(raw.date(), raw.timetz().replace(tzinfo=None), raw.tzinfo)
        return _Moment(raw.date(), raw.time())
    if isinstance(raw, date):
        return _Moment(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal, str)):
        raise _error(message, code, raw)
    if not isinstance(raw, str):
        if not _finite(raw):
            raise _error(message, code, raw)
        number = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        if 1 <= number < EXCEL_MAX_SERIAL + 1:
            return _excel_serial(number, raw, message, code)
        if number != number.to_integral_value() or not 10**7 <= number < 10**8:
            raise _error(message, code, raw)
        text = str(int(number))  # 20261201
    else:
        text = fold(raw).strip()
    if len(text) > 60:
        raise _error(message, code, raw)
    day, rest = _date_part(text, raw, day_first, message, code)
    clock, offset = _time_part(rest, raw, message, code)
    return _Moment(day, clock, offset)


def _check_range(day: date, raw: Any) -> None:
    if not dates.EARLIEST <= day <= dates.LATEST:
        raise _error(
            DATE_OUT_OF_RANGE,
            "date_out_of_range",
            raw,
            earliest=dates.EARLIEST.isoformat(),
            latest=dates.LATEST.isoformat(),
        )


def to_date(raw: Any, *, day_first: bool | None = None) -> date | None:
    """A calendar day (see the module's rules); a time of day other than midnight is
    refused, and the day must lie within crm.dates' bounds."""
    if is_empty(raw):
        return None
    moment = _parse_moment(raw, day_first, message=NOT_A_DATE, code="not_a_date")
    _check_range(moment.day, raw)
    if moment.offset is not None:
        # An instant: its day where the user is.
        aware = datetime.combine(moment.day, moment.clock or time(), moment.offset)
        local = timezone.localtime(aware)
        if local.time() != time():
            raise _error(HAS_TIME, "has_time", raw)
        day = local.date()
        _check_range(day, raw)
        return day
    if moment.clock not in (None, time()):
        raise _error(HAS_TIME, "has_time", raw)
    return moment.day


def to_datetime(raw: Any, *, day_first: bool | None = None) -> datetime | None:
    """A moment, aware, in the current time zone (a value without an offset is local
    time; a date alone is its midnight), within crm.dates' bounds."""
    if is_empty(raw):
        return None
    moment = _parse_moment(raw, day_first, message=NOT_A_DATETIME, code="not_a_datetime")
    _check_range(moment.day, raw)  # before any time zone arithmetic can overflow
    naive = datetime.combine(moment.day, moment.clock or time())
    if moment.offset is not None:
        value = timezone.localtime(naive.replace(tzinfo=moment.offset))
    else:
        value = timezone.make_aware(naive)
    _check_range(value.date(), raw)
    return value


# --- Yes / no ---------------------------------------------------------------------------------

YES = frozenset({"1", "true", "yes", "y", "是", "对", "有", "√", "✓", "✔", "on"})
NO = frozenset({"0", "false", "no", "n", "否", "不", "无", "×", "✗", "✘", "off"})


def to_bool(raw: Any) -> bool | None:
    """是/否, Y/N, true/false, 1/0, ✓/✗ and the like (see YES and NO); None for empty."""
    if is_empty(raw):
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float, Decimal)) and _finite(raw) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        key = fold(raw).strip().casefold()
        if key in YES:
            return True
        if key in NO:
            return False
    raise _error(NOT_YES_NO, "not_yes_no", raw)


# --- Choices, dictionary items, people --------------------------------------------------------

_AMBIGUOUS = object()


class Options:
    """Find one of a set of options by what people write for it: a primary key (a code,
    a choice's value, a username) before secondary ones (labels, names), each compared by
    `match_key`. A secondary key two options share is ambiguous."""

    def __init__(self, label: str = ""):
        self.label = label
        self.levels: list[dict[str, Any]] = []

    def add(self, option: Any, *keys_by_level: Iterable[str]) -> None:
        while len(self.levels) < len(keys_by_level):
            self.levels.append({})
        for level, keys in zip(self.levels, keys_by_level, strict=False):
            for key in {match_key(k) for k in keys if k}:
                if key in level and level[key] != option:
                    level[key] = _AMBIGUOUS
                else:
                    level[key] = option

    def find(self, text: str) -> Any:
        """The option, `Options.AMBIGUOUS`, or None."""
        key = match_key(text)
        for level in self.levels:
            if key in level:
                return level[key]
        return None

    AMBIGUOUS = _AMBIGUOUS

    def match(self, raw: Any) -> Any:
        """The option `raw` names, or a ValidationError naming the value and the field."""
        text = to_text(raw)
        found = self.find(text)
        if found is _AMBIGUOUS:
            raise _error(AMBIGUOUS_OPTION, "ambiguous_choice", raw, field=self.label)
        if found is None:
            raise _error(NOT_AN_OPTION, "invalid_choice", raw, field=self.label)
        return found


def choice_options(choices: Iterable[tuple[Any, Any]], label: str) -> Options:
    """Options of a model field's choices: its values, then its labels in every language
    of the site."""
    choices = list(choices)
    options = Options(label)
    labels: dict[Any, list[str]] = {value: [] for value, _label in choices}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            for value, name in choices:
                labels[value].append(str(name))
    for value, _name in choices:
        options.add(value, [str(value)], labels[value])
    return options


class DictionaryOptions:
    """The items of one dictionary, loaded once: `match(raw)` finds an active item (or
    the record's current one) by code or either label."""

    def __init__(self, code: str, *, current: int | None = None):
        self.code = code
        self.current = current
        self._options: Options | None = None
        self._items: dict[int, DictionaryItem] = {}

    def _load(self) -> Options:
        if self._options is None:
            dictionary = Dictionary.objects.filter(code=self.code).first()
            options = Options(dictionary.name if dictionary else self.code)
            items = DictionaryItem.objects.filter(dictionary__code=self.code)
            for item in items.order_by("order", "id"):
                options.add(item, [item.code], [item.label, item.label_en])
                self._items[item.pk] = item
            self._options = options
        return self._options

    def match(self, raw: Any) -> DictionaryItem:
        options = self._load()
        if isinstance(raw, DictionaryItem):
            item = self._items.get(raw.pk)
            if item is None:
                raise _error(NOT_AN_OPTION, "invalid_choice", str(raw), field=options.label)
        else:
            item = options.match(raw)
        if not item.is_active and item.pk != self.current:
            raise _error(INACTIVE_OPTION, "inactive_choice", raw, field=options.label)
        return item


class People:
    """The people of `queryset` (for owners: `users_in_scope(user)`), loaded once:
    `match(raw)` finds one by username, email or name (姓名), or a number as a username and
    then an id. A name two people share is refused, asking for the username."""

    def __init__(
        self, queryset: models.QuerySet, *, also: int | None = None, not_found=NOT_ASSIGNABLE
    ):
        self.queryset = queryset
        self.not_found = not_found
        self.also = also  # the record's current person, accepted even outside the queryset
        self._options: Options | None = None
        self._by_id: dict[int, Any] = {}

    def _load(self) -> Options:
        if self._options is None:
            User = get_user_model()
            people = list(self.queryset.order_by("pk"))
            if self.also is not None and all(p.pk != self.also for p in people):
                people += list(User.objects.filter(pk=self.also))
            options = Options()
            for person in people:
                options.add(person, [person.username], [person.email], [person.name])
                self._by_id[person.pk] = person
            self._options = options
        return self._options

    def match(self, raw: Any):
        options = self._load()
        if hasattr(raw, "pk") and hasattr(raw, "username"):
            if raw.pk in self._by_id:
                return self._by_id[raw.pk]
            raise _error(self.not_found, "not_assignable", raw.get_username())
        text = to_text(raw)
        found = options.find(text)
        if found is _AMBIGUOUS:
            key = match_key(text)
            usernames = sorted(
                p.username for p in self._by_id.values() if match_key(p.name or "") == key
            )
            raise _error(
                AMBIGUOUS_PERSON, "ambiguous_person", raw, usernames=", ".join(usernames[:5])
            )
        if found is None and re.fullmatch(r"[0-9]{1,19}", text):
            found = self._by_id.get(int(text))
        if found is None:
            raise _error(self.not_found, "not_assignable", raw)
        return found


# --- Tags -------------------------------------------------------------------------------------


def to_tag_names(raw: Any) -> list[str]:
    """Tag names from one cell ("华东, 年度大单", one per line) or a list of names or tags,
    in order, once each; a name too long for a tag is refused."""
    if is_empty(raw):
        return []
    if isinstance(raw, (list, tuple, set)):
        parts = []
        for part in raw:
            name = part.name if isinstance(part, Tag) else to_text(part)
            parts.append(validation.validate_tag_name(name))
    else:
        text = to_text(raw)
        parts = [name for line in text.splitlines() for name in validation.tag_names(line)]
    names: list[str] = []
    for name in parts:
        if name and name not in names:
            names.append(name)
    return names


# --- Record-type fields -----------------------------------------------------------------------

Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class FieldTarget:
    """What a converter is built for: one field of a record type, for one user."""

    record_type: str
    name: str
    label: str
    user: Any
    model: type[models.Model]
    field: models.Field | None = None  # the model field (standard fields)
    custom: CustomField | None = None  # the definition (custom fields)
    current: Any = None  # the record's value: raw id for foreign keys, stored JSON for custom
    day_first: bool | None = None
    instance: models.Model | None = None  # the record being changed, if any


CoercerFactory = Callable[[FieldTarget], Converter]

_overrides: dict[tuple[str, str], CoercerFactory] = {}


def register_coercer(record_type: str, name: str, factory: CoercerFactory) -> None:
    """Convert `name` of `record_type` with `factory(target)` instead of the converter its
    model field would get (a phone kept in a CharField, a percentage in an integer). The
    empty-value rule and the model field's validators still apply around it."""
    _overrides[(record_type, name)] = factory


def _text_coercer(target: FieldTarget) -> Converter:
    max_length = target.field.max_length

    def convert(raw):
        return to_text(raw, max_length=max_length)

    return convert


def phone_coercer(target: FieldTarget) -> Converter:
    """A phone kept in a CharField: E.164."""
    return to_phone


def _url_coercer(target: FieldTarget) -> Converter:
    field = forms.URLField(assume_scheme="https", max_length=target.field.max_length)

    def convert(raw):
        text = to_text(raw)
        try:
            return field.clean(text)
        except ValidationError as exc:
            raise _error(FIELD_ERROR, "field_error", raw, error=" ".join(exc.messages)) from None

    return convert


def _integer_coercer(target: FieldTarget) -> Converter:
    low, high = INTEGER_RANGES.get(target.field.get_internal_type(), INT64)

    def convert(raw):
        return to_integer(raw, min_value=low, max_value=high)

    return convert


def percent_coercer(target: FieldTarget) -> Converter:
    """A percentage 0..100 in an integer or decimal field ("35%", 35, 0.35 → 35)."""
    places = getattr(target.field, "decimal_places", None) or 0

    def convert(raw):
        return to_percent(raw, decimal_places=places)

    return convert


def _decimal_coercer(target: FieldTarget) -> Converter:
    field = target.field

    def convert(raw):
        return to_decimal(raw, max_digits=field.max_digits, decimal_places=field.decimal_places)

    return convert


def _date_coercer(target: FieldTarget) -> Converter:
    return lambda raw: to_date(raw, day_first=target.day_first)


def _datetime_coercer(target: FieldTarget) -> Converter:
    return lambda raw: to_datetime(raw, day_first=target.day_first)


def _boolean_coercer(target: FieldTarget) -> Converter:
    return to_bool


def _choices_coercer(target: FieldTarget) -> Converter:
    return choice_options(target.field.choices, target.label).match


def _dictionary_coercer(target: FieldTarget) -> Converter:
    code = (target.field.remote_field.limit_choices_to or {}).get("dictionary__code")
    if code is None:
        raise LookupError(f"{target.record_type}.{target.name} names no dictionary")
    return DictionaryOptions(code, current=target.current).match


def _people_coercer(target: FieldTarget) -> Converter:
    return People(access.users_in_scope(target.user), also=target.current).match


def _tags_coercer(target: FieldTarget) -> Converter:
    return to_tag_names


def reference_coercer(
    queryset: Callable[[FieldTarget], models.QuerySet] | None = None,
    *,
    names: tuple[str, ...] = ("name", "name_en"),
) -> CoercerFactory:
    """A factory for a foreign key to another record: a row of `queryset(target)` (by
    default the related model's rows the user may see) given as an instance, an id, or
    its exact name (the `names` fields it has)."""

    def factory(target: FieldTarget) -> Converter:
        model = target.field.related_model
        label = str(model._meta.verbose_name)
        if queryset is not None:
            rows = queryset(target)
        else:
            rows = model._default_manager.all()
            if access.is_registered(model):
                rows = access.scope_queryset(rows, target.user)
        fields = [n for n in names if any(f.name == n for f in model._meta.get_fields())]
        found: dict[str, Any] = {}

        def convert(raw):
            if isinstance(raw, model):
                key = f"#{raw.pk}"
                text = str(raw)
            else:
                text = to_text(raw)
                key = text
            if key not in found:
                if isinstance(raw, model):
                    matches = list(rows.filter(pk=raw.pk)[:2])
                else:
                    q = models.Q()
                    for name in fields:
                        q |= models.Q(**{name: text})
                    matches = list(rows.filter(q)[:2]) if fields else []
                    if not matches and re.fullmatch(r"[0-9]{1,18}", text):
                        matches = list(rows.filter(pk=int(text))[:1])
                found[key] = matches
            matches = found[key]
            if len(matches) > 1:
                raise _error(AMBIGUOUS_RECORD, "ambiguous_record", text, model=label)
            if not matches:
                raise _error(NO_SUCH_RECORD, "no_such_record", text, model=label)
            return matches[0]

        return convert

    return factory


def _derived(field: models.Field) -> CoercerFactory | None:
    """The converter a model field's type calls for (see the module docstring)."""
    User = get_user_model()
    if field.many_to_many:
        return _tags_coercer if field.related_model is Tag else None
    if isinstance(field, models.ForeignKey):
        if field.related_model is DictionaryItem:
            return _dictionary_coercer
        if field.related_model is User:
            return _people_coercer
        if field.related_model is ContentType:
            return None
        return reference_coercer()
    if field.choices:
        return _choices_coercer
    if isinstance(field, models.BooleanField):
        return _boolean_coercer
    if isinstance(field, models.DecimalField):
        return _decimal_coercer
    if isinstance(field, models.IntegerField):
        return _integer_coercer
    if isinstance(field, models.DateTimeField):
        return _datetime_coercer
    if isinstance(field, models.DateField):
        return _date_coercer
    if isinstance(field, models.URLField):
        return _url_coercer
    if isinstance(field, (models.CharField, models.TextField)):
        return _text_coercer
    return None


def _custom_coercer(target: FieldTarget) -> Converter:
    """A custom field through its type's form field (crm.fields.types), built once."""
    from . import types  # types parses with this module's functions

    cf = target.custom
    form_field = types.form_field(cf, current=target.current, required=False)
    kind = cf.field_type

    def convert(raw):
        if kind == FieldType.DATE:
            raw = to_date(raw, day_first=target.day_first)
        elif kind == FieldType.DATETIME:
            raw = to_datetime(raw, day_first=target.day_first)
        elif kind == FieldType.USER and hasattr(raw, "pk"):
            raw = raw.pk
        return types.to_storage(cf, form_field.clean(raw))

    return convert


def _model_for(record_type: str) -> type[models.Model]:
    for registered in access.record_types():
        if registered.key == record_type:
            return registered.model
    raise LookupError(f"no record type {record_type!r}")


def _excluded(model: type[models.Model]) -> set[str]:
    """Fields no raw value sets: a generic relation's parts."""
    names = set()
    for field in model._meta.private_fields:
        if isinstance(field, GenericForeignKey):
            names |= {field.ct_field, field.fk_field}
    return names


def _standard_field(model: type[models.Model], name: str) -> models.Field | None:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if (
        not getattr(field, "concrete", False)
        or field.auto_created
        or not field.editable
        or field.primary_key
        or name in _excluded(model)
        or isinstance(field, models.JSONField)
    ):
        return None
    return field


def _custom_field(record_type: str, name: str) -> CustomField | None:
    from . import schema

    key = name.removeprefix("cf_")
    fields = schema.custom_fields(record_type)
    return next((cf for cf in fields if cf.key == key), None) or next(
        (cf for cf in fields if cf.key == name), None
    )


def coercible_fields(record_type: str) -> list[str]:
    """Every field of `record_type` a raw value can be coerced for: standard names, then
    the active custom fields as "cf_<key>"."""
    from . import schema

    model = _model_for(record_type)
    names = []
    for field in model._meta.get_fields():
        name = field.name
        if _standard_field(model, name) is None:
            continue
        if (record_type, name) in _overrides or _derived(field) is not None:
            names.append(name)
    return names + [cf.name for cf in schema.custom_fields(record_type)]


def _target(
    record_type: str, name: str, *, user, instance=None, day_first: bool | None = None
) -> tuple[FieldTarget, CoercerFactory]:
    model = _model_for(record_type)
    field = _standard_field(model, name)
    if field is not None:
        factory = _overrides.get((record_type, name)) or _derived(field)
        if factory is None:
            raise LookupError(f"{record_type}.{name} takes no raw value")
        current = None
        if instance is not None and not field.many_to_many:
            current = getattr(instance, field.attname)
        label = str(capfirst(field.verbose_name))
        target = FieldTarget(
            record_type, name, label, user, model, field, None, current, day_first, instance
        )
        return target, factory
    cf = _custom_field(record_type, name)
    if cf is None:
        raise LookupError(f"{record_type} has no field {name!r}")
    current = (instance.custom or {}).get(cf.key) if instance is not None else None
    target = FieldTarget(
        record_type, cf.name, cf.display_label, user, model, None, cf, current, day_first, instance
    )
    return target, _overrides.get((record_type, cf.name)) or _custom_coercer


def _empty_value(target: FieldTarget) -> Any:
    field = target.field
    if field is None:
        if target.custom.required:
            raise ValidationError(REQUIRED, code="required", params={"field": target.label})
        return None
    if field.many_to_many:
        return []
    if not field.blank:
        raise ValidationError(REQUIRED, code="required", params={"field": target.label})
    return None if field.null else ""


def _named(exc: ValidationError, raw: Any) -> ValidationError:
    """The errors of a field's own validators, each naming the value."""
    errors = []
    for error in exc.error_list:
        # accounts.phones names the value too.
        if id(error.message) in _OWN_MESSAGES or error.code == "invalid_phone":
            errors.append(error)
        else:
            message = error.message % error.params if error.params else error.message
            errors.append(_error(FIELD_ERROR, "field_error", raw, error=message))
    return ValidationError(errors)


def coercer_for(
    record_type: str,
    name: str,
    *,
    user,
    instance: models.Model | None = None,
    day_first: bool | None = None,
) -> Converter:
    """A converter for one field of `record_type` — a column of an import: its lookups
    load on first use, then each value costs no query (references by name aside). Raises
    LookupError for a field that does not exist or takes no raw value. `instance`: the
    record being changed (its inactive dictionary item or owner out of scope stays
    acceptable for it); `day_first`: how to read this column's 01/12/2026."""
    target, factory = _target(record_type, name, user=user, instance=instance, day_first=day_first)
    convert = factory(target)
    field = target.field
    check = field is not None and not field.is_relation

    def coerce(raw: Any) -> Any:
        if is_empty(raw):
            return _empty_value(target)
        try:
            value = convert(raw)
            if check and value is not None:
                field.run_validators(value)
                field.validate(value, None)
        except ValidationError as exc:
            raise _named(exc, raw) from None
        return value

    return coerce


def coerce_value(
    record_type: str,
    name: str,
    raw: Any,
    *,
    user,
    instance: models.Model | None = None,
    day_first: bool | None = None,
) -> Any:
    """The value `name` of `record_type` stores for `raw`, or a ValidationError naming
    it. One value (an API call); for many, build `coercer_for` once per column."""
    return coercer_for(record_type, name, user=user, instance=instance, day_first=day_first)(raw)


def coerce_values(
    record_type: str,
    raw: Mapping[str, Any],
    *,
    user,
    instance: models.Model | None = None,
) -> dict[str, Any]:
    """Several fields at once (an API payload): the coerced values by field name, or one
    ValidationError keyed by field with every refusal."""
    values: dict[str, Any] = {}
    errors: dict[str, list[ValidationError]] = {}
    for name, value in raw.items():
        try:
            values[name] = coerce_value(record_type, name, value, user=user, instance=instance)
        except ValidationError as exc:
            errors[name] = exc.error_list
    if errors:
        raise ValidationError(errors)
    return values
