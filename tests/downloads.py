"""Reading the files the exports answer with (CSV with a BOM, Excel), and narrowing a
role's field permissions for an export test: shared by the record and report export
tests."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from accounts.models import User

BOM = "\ufeff".encode()


def csv_table(response) -> list[list[str]]:
    """The rows of a CSV download (Excel opens it as UTF-8 thanks to the BOM)."""
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(BOM)
    return list(csv.reader(io.StringIO(response.content[len(BOM) :].decode("utf-8"))))


def as_dicts(table: list[list[str]]) -> list[dict[str, str]]:
    header, *rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]


def xlsx_book(response):
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    return load_workbook(io.BytesIO(response.content))


def restrict(user: User, record_type: str = "customer", **levels) -> User:
    """The user reloaded, with their role's field permissions for one record type."""
    role = user.role
    role.field_permissions = {record_type: levels}
    role.save()
    return User.objects.select_related("role", "department").get(pk=user.pk)
