"""Money as every page, report and custom field shows it: ¥1,234.50.

Amounts are CNY (the CRM's one currency, see `FieldType.MONEY`). One function formats them
so that a deal's amount reads the same on its page, in a list, in search, on the customer
page, in reports and in a custom money field. The `money` template filter (crm_ui) calls it.
Exports write the plain number instead, so that a spreadsheet can compute with it.
"""

from __future__ import annotations

from decimal import Decimal

CURRENCY_SYMBOL = "¥"


def format_money(value: Decimal | int | float | str | None, *, places: int = 2) -> str:
    """`value` in yuan with the currency sign and thousands separators: "¥1,234.50".

    No value is ¥0.00 (a deal without an amount counts as nothing). `places=0` gives
    whole yuan ("¥12,000") where space is short, as on the board's cards. A text that is
    not a number raises decimal.InvalidOperation: the caller decides what to show."""
    amount = Decimal(value) if value not in (None, "") else Decimal(0)
    return f"{CURRENCY_SYMBOL}{amount:,.{places}f}"
