"""Money as every page, report and custom field shows it: ¥1,234.50.

Amounts are CNY (the CRM's one currency, see `FieldType.MONEY`). One function formats them
so that a deal's amount reads the same on its page, in a list, in search, on the customer
page, in reports and in a custom money field. The `money` template filter (crm_ui) calls it.
Exports write the plain number instead, so that a spreadsheet can compute with it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .html import format_html

CURRENCY_SYMBOL = "¥"


def format_money(value: Decimal | int | float | str | None, *, places: int = 2) -> str:
    """`value` in yuan with the currency sign and thousands separators: "¥1,234.50".

    No value is ¥0.00 (a deal without an amount counts as nothing). `places=0` gives
    whole yuan ("¥12,000") where space is short, as on the board's cards. A text that is
    not a number raises decimal.InvalidOperation: the caller decides what to show."""
    amount = Decimal(value) if value not in (None, "") else Decimal(0)
    return f"{CURRENCY_SYMBOL}{amount:,.{places}f}"


# --- Compact amounts: lists, cards, boards and reports --------------------------------
#
# Where many amounts stand side by side the fen are noise: Chinese business software
# writes ¥16.56亿, ¥93.6万, ¥8,500. In Chinese (any zh-* language) the units are 万
# (10⁴) and 亿 (10⁸); in every other language the international K, M and B (10³, 10⁶,
# 10⁹), as English readers would not know 万. Below 10,000 an amount is whole yuan in
# both. A scaled figure has at most two decimals, trailing zeros dropped, rounded half
# up (四舍五入); a figure that rounds up to the next unit is written in it (99,999,999
# is ¥1亿, not ¥10,000万). The exact amount stays on the record's page and in exports,
# and compact displays carry it in their title (`money_html`).

COMPACT_FROM = Decimal(10_000)
# (threshold, divisor, suffix), largest first.
CHINESE_UNITS = ((Decimal(10) ** 8, "亿"), (Decimal(10) ** 4, "万"))
WESTERN_UNITS = ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "K"))
_HUNDREDTH = Decimal("0.01")


def _units(language: str | None):
    if language is None:
        from django.utils.translation import get_language

        language = get_language() or ""
    return CHINESE_UNITS if language.lower().startswith("zh") else WESTERN_UNITS


def _trimmed(number: Decimal) -> str:
    text = f"{number:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_money_compact(
    value: Decimal | int | float | str | None, *, language: str | None = None
) -> str:
    """`value` in yuan, short: "¥16.56亿", "¥93.6万", "¥8,500" (English: "¥1.66B",
    "¥936K", "¥8,500"). `language` defaults to the active one. No value is ¥0, as in
    `format_money`; a text that is no number raises decimal.InvalidOperation."""
    amount = Decimal(value) if value not in (None, "") else Decimal(0)
    sign, size = ("-" if amount < 0 else ""), abs(amount)
    whole = size.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if whole < COMPACT_FROM:
        text = f"{whole:,.0f}"
    else:
        text = ""
        units = _units(language)
        for index, (divisor, suffix) in enumerate(units):
            if size < divisor:
                continue
            scaled = (size / divisor).quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)
            bigger = units[index - 1] if index else None
            if bigger is not None and scaled * divisor >= bigger[0]:
                scaled, suffix = (size / bigger[0]).quantize(_HUNDREDTH, ROUND_HALF_UP), bigger[1]
            text = _trimmed(scaled) + suffix
            break
        if not text:  # between 9,999.5 and the smallest unit's threshold
            smallest, suffix = units[-1]
            text = _trimmed((size / smallest).quantize(_HUNDREDTH, ROUND_HALF_UP)) + suffix
    return f"{CURRENCY_SYMBOL}{sign}{text}" if text != "0" else f"{CURRENCY_SYMBOL}0"


def money_html(value, *, language: str | None = None) -> str:
    """A compact amount whose title is the exact one: what lists, cards and boards show,
    `<span class="app-money" title="¥936,000.00">¥93.6万</span>` (a SafeString). A text
    that is no number is shown as it is."""
    try:
        exact, short = format_money(value), format_money_compact(value, language=language)
    except (InvalidOperation, TypeError, ValueError):
        return format_html("{}", value)
    return format_html('<span class="app-money" title="{}">{}</span>', exact, short)
