"""Uploaded spreadsheets as one table: the reading half of an import (and the error report
a user fixes and uploads again).

`read_table(file, name=...)` turns a CSV or .xlsx upload into a `Table`: its header row,
its data rows (each as long as the header, with its row number in the file for messages)
and how it was read (format, sheet, encoding, delimiter), or raises `UnreadableFile`
whose message, in the user's language, says what to do. Any bytes give one of the two,
never another exception: uploads come from anyone, and a bad one must not cost a 500 or
a worker.

How a file is read, each a rule people can predict:

- Format by content, never by name: a zip is an .xlsx; an OLE2 container is an encrypted
  .xlsx or an old .xls (both refused with the same advice: save as .xlsx without a
  password); text is CSV; anything else is refused. The name only hints a tab delimiter
  (.tsv, .txt, .tab) for a file with one column.
- CSV text: a byte-order mark decides (UTF-8, UTF-16), else strict UTF-8, else GB18030
  (what Chinese Excel writes as "CSV"). The delimiter (, ; tab |) is the one that splits
  the first rows into the same number of columns most consistently — not csv.Sniffer,
  whose quote guessing takes minutes on some 64 KB inputs. Values stay the file's strings
  ("" for an empty cell); "\\r\\n" inside a quoted cell becomes "\\n".
- .xlsx: read by python-calamine. Numbers come as floats (a phone as 13800138000.0), dates
  as date/datetime, an empty cell (and an Excel error like #N/A) as None. Hidden sheets
  are not offered; the default sheet is the first visible one with data. Before a sheet
  is read its XML is scanned for the furthest cell: calamine holds a sheet as one dense
  block from A1 to that cell and aborts the whole process when that cannot be allocated
  (one stray value in XFD1048576 is 17 billion cells), so such a sheet is refused with
  the cell to delete.
- The header row, unless given: among the first 20 non-empty rows, the first one with
  two or more cells, mostly text, and either (nearly) as wide as the widest of those rows
  or followed by a row of data — so a title like "2026年客户名单" above the header is
  skipped. With no such row (a one-column file), the first non-empty row.
- Columns empty in the header and in every data row are cut off at both edges; fully
  empty rows are dropped (their numbers are skipped, not reused). Two columns whose
  names match (as crm.fields.coerce.match_key compares them) are refused.

`write_error_report(table, rows, error_header=...)` writes the rows an import refused,
each with its reason in a last column, in the format (and for CSV the encoding and
delimiter) of the upload, so that it opens like the original and reads back the same.
Formula-like text is kept inert as the exports keep it (crm.exports): in a CSV behind an
apostrophe (csv_safe), in an .xlsx as a text cell.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import math
import posixpath
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from crm.exports import csv_safe
from crm.fields.coerce import match_key
from crm.xlsx import column_letters

CSV, XLSX = "csv", "xlsx"
DELIMITERS = (",", ";", "\t", "|")
# Rows looked at for the header (non-empty ones), and rows shown to choose it by hand.
HEADER_WINDOW = 20
PREVIEW_ROWS = 10
PREVIEW_MAX = 30
# Characters of decoded text in which the delimiter is detected.
SNIFF_CHARS = 64 * 1024
SNIFF_RECORDS = 100
# A sheet is read only if the block from A1 to its furthest cell holds at most this many
# cells (calamine allocates ~32 bytes per cell of that block, Python 8 more per cell), and
# no part of the workbook unpacks to more than MAX_XML_BYTES (a zip bomb).
MAX_CELLS = 10_000_000
MAX_XML_BYTES = 1024**3
MB = 1024 * 1024
MAX_SMALL_PART = 16 * MB

ZIP_SIGNATURE = b"PK\x03\x04"
EMPTY_ZIP_SIGNATURE = b"PK\x05\x06"
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Files that are clearly no text (most also hold NUL bytes in their first KB).
BINARY_SIGNATURES = (
    b"%PDF",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"Rar!",
    b"7z\xbc\xaf",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"{\\rtf",
)
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


# --- Messages --------------------------------------------------------------------------

TOO_BIG = _("This file is %(size)s MB; files of up to %(limit)s MB can be imported.")
TOO_MANY_ROWS = _(
    "This file has more than %(limit)s rows of data: split the file into parts of at most "
    "%(limit)s rows each."
)
NOT_SPREADSHEET = _("This file is not a spreadsheet: upload a .csv or .xlsx file.")
PROTECTED = _(
    "This workbook is password-protected or in the old .xls format: save it as .xlsx "
    "without a password."
)
DAMAGED = _(
    "This workbook is damaged and cannot be read: open it in Excel, save it as .xlsx "
    "again and upload that file."
)
XLSB = _("This workbook is in the binary .xlsb format: save it as .xlsx.")
WEB_PAGE = _(
    "This file is a web page or an XML file, not a spreadsheet: open it in Excel and save "
    "it as .xlsx."
)
UNKNOWN_ENCODING = _(
    "The text encoding of this file was not recognised: save it as “CSV UTF-8” or as .xlsx."
)
WRONG_ENCODING = _("This file cannot be read as %(encoding)s: choose another encoding.")
BAD_DELIMITER = _(
    "“%(delimiter)s” cannot separate columns: choose a comma, semicolon, tab or vertical bar."
)
BROKEN_CSV = _(
    "This file cannot be read from row %(row)s on: a quotation mark there is probably never closed."
)
EMPTY = _("This file is empty: there is nothing to import.")
EMPTY_SHEET = _("The sheet “%(sheet)s” is empty.")
NO_SHEET = _("This workbook has no sheet “%(sheet)s”.")
SHEET_TOO_LARGE = _(
    "The sheet “%(sheet)s” has cells as far as %(cell)s: delete everything below and to "
    "the right of your table, or split the file."
)
NO_SUCH_ROW = _("There is no row %(row)s: the file has %(rows)s rows.")
NO_SUCH_ROW_AT_ALL = _("There is no row %(row)s: rows are numbered from 1.")
EMPTY_HEADER_ROW = _("Row %(row)s is empty: choose the row that holds the column names.")
NO_DATA = _("There are no rows of data below the column names (row %(row)s).")
DUPLICATE_HEADER = _(
    "The column name “%(name)s” is used twice (columns %(first)s and %(second)s): give "
    "each column its own name."
)


class UnreadableFile(Exception):
    """A file that cannot be imported. `message` is for the user, in the language active
    when it was raised; `code` names the reason (for tests and logs), and `template` and
    `params` render it again in another language (`str(template) % params`)."""

    def __init__(self, template, code: str, **params: Any):
        self.template, self.code, self.params = template, code, params
        self.message = str(template) % params if params else str(template)
        super().__init__(self.message)


# --- The table -------------------------------------------------------------------------


@dataclass
class Table:
    """One CSV file or sheet as read. Cells are as the file holds them: in a CSV strings
    ("" when empty); in an .xlsx float, bool, str, date, datetime, time, timedelta, or
    None when empty."""

    format: str  # "csv" | "xlsx"
    headers: list[str]  # the header cells as text, stripped; "" for an empty one
    rows: list[list[Any]]  # the data rows, each len(headers) long; empty rows left out
    row_numbers: list[int]  # each data row's 1-based row number in the file
    header_row: int  # 1-based
    sheet: str = ""  # xlsx: the sheet read
    sheets: list[str] = field(default_factory=list)  # xlsx: the visible sheets
    encoding: str = ""  # csv: "utf-8", "utf-8-sig", "gb18030", "utf-16" (or as chosen)
    delimiter: str = ""  # csv
    preview_rows: list[list[Any]] = field(default_factory=list)  # first raw rows, titles too


def read_table(
    file,
    *,
    name: str,
    sheet: str | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    max_bytes: int | None = None,
    max_rows: int | None = None,
) -> Table:
    """`file` (a binary file object: an upload, an open file, a storage file) as a Table,
    or UnreadableFile. `name` is the uploaded file's name (a hint only); `sheet`,
    `header_row` (1-based), `encoding` and `delimiter` override what is detected."""
    # "" is "not chosen", as an ImportJob stores it.
    sheet, encoding, delimiter = sheet or None, encoding or None, delimiter or None
    max_bytes = settings.CRM_IMPORT_MAX_BYTES if max_bytes is None else max_bytes
    max_rows = settings.CRM_IMPORT_MAX_ROWS if max_rows is None else max_rows
    data = _read_bytes(file, max_bytes)
    if not data.strip():
        raise UnreadableFile(EMPTY, "empty")
    if data.startswith(ZIP_SIGNATURE):
        return _read_xlsx(data, sheet=sheet, header_row=header_row, max_rows=max_rows)
    if data.startswith(EMPTY_ZIP_SIGNATURE):
        raise UnreadableFile(NOT_SPREADSHEET, "not_spreadsheet")
    if data.startswith(OLE2_SIGNATURE):
        raise UnreadableFile(PROTECTED, "protected")
    return _read_csv(
        data,
        name=name,
        header_row=header_row,
        encoding=encoding,
        delimiter=delimiter,
        max_rows=max_rows,
    )


def _mb(size: int) -> str:
    """A size in MB as a message shows it: rounded up to a tenth (so a file just over
    the limit never reads as the limit), whole numbers without decimals."""
    tenths = math.ceil(size * 10 / MB)
    return str(tenths // 10) if tenths % 10 == 0 else f"{tenths / 10:.1f}"


def _file_size(file) -> int | None:
    size = getattr(file, "size", None)
    if isinstance(size, int):
        return size
    try:
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


def _read_bytes(file, max_bytes: int) -> bytes:
    """The whole file, refused above `max_bytes` before it is read where its size is
    known (an upload's, a file's), else as soon as more was read."""
    with suppress(AttributeError, OSError, ValueError):
        file.seek(0)
    size = _file_size(file)
    if size is not None and size > max_bytes:
        raise UnreadableFile(TOO_BIG, "too_big", size=_mb(size), limit=_mb(max_bytes))
    data = file.read(max_bytes + 1)
    if isinstance(data, str):  # a text-mode file: its own encoding decided already
        data = data.encode("utf-8")
    data = bytes(data or b"")
    if len(data) > max_bytes:
        raise UnreadableFile(TOO_BIG, "too_big", size=_mb(size or len(data)), limit=_mb(max_bytes))
    return data


# --- Cells, rows and the header --------------------------------------------------------

# What a number, a date, a time or an amount is made of when it comes as text (a CSV).
_DATA_CHARS = re.compile(r"[\d\s,.()+\-/:%¥￥$€年月日时分秒元万亿T]*")


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_text(value: Any) -> bool:
    """A cell that reads as a label rather than a value: text that is not a number, a
    date or an amount."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return not (any(c.isdigit() for c in text) and _DATA_CHARS.fullmatch(text))


def _filled(row: Sequence[Any]) -> int:
    return sum(1 for value in row if not _is_blank(value))


def _looks_like_header(row: Sequence[Any], widest: int, below: Sequence[Any] | None) -> bool:
    filled = _filled(row)
    if filled < 2 or sum(1 for v in row if not _is_blank(v) and _is_text(v)) * 2 <= filled:
        return False
    if filled * 5 >= widest * 4:
        return True
    return (
        below is not None
        and _filled(below) >= 2
        and any(not _is_blank(v) and not _is_text(v) for v in below)
    )


def _detect_header(head: list[Sequence[Any]]) -> int:
    """The index in `head` of the header row (see the module's docstring)."""
    filled = [i for i, row in enumerate(head) if _filled(row)]
    window = filled[:HEADER_WINDOW]
    widest = max(_filled(head[i]) for i in window)
    for position, i in enumerate(window):
        below = head[window[position + 1]] if position + 1 < len(window) else None
        if _looks_like_header(head[i], widest, below):
            return i
    return window[0]


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, (date, time)):
        return value.isoformat(" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).replace("\r\n", "\n").strip()


# A 0-based column index as Excel names it (0 → A, 26 → AA).
column_letter = column_letters


def _check_headers(headers: list[str], first_column: int) -> None:
    seen: dict[str, int] = {}
    for index, header in enumerate(headers):
        if not header:
            continue
        key = match_key(header)
        if key in seen:
            raise UnreadableFile(
                DUPLICATE_HEADER,
                "duplicate_header",
                name=header,
                first=column_letter(first_column + seen[key]),
                second=column_letter(first_column + index),
            )
        seen[key] = index


def _build(
    records: Iterator[list[Any]],
    *,
    header_row: int | None,
    max_rows: int,
    empty: Any,
    sheet: str | None = None,
) -> tuple[list[str], list[list[Any]], list[int], int, list[list[Any]]]:
    """Headers, data rows, their row numbers, the header's row number and the preview,
    from a file's rows in order (row 1 first). `empty` fills a short row (None, or "" in
    a CSV)."""
    if header_row is not None and header_row < 1:
        raise UnreadableFile(NO_SUCH_ROW_AT_ALL, "header_row", row=header_row)
    head: list[list[Any]] = []
    non_empty = 0
    wanted = header_row or 0
    for record in records:
        head.append(record)
        if _filled(record):
            non_empty += 1
        if len(head) >= wanted and non_empty >= HEADER_WINDOW:
            break
    if not non_empty:
        if sheet is not None:
            raise UnreadableFile(EMPTY_SHEET, "empty", sheet=sheet)
        raise UnreadableFile(EMPTY, "empty")
    if header_row is not None:
        if header_row > len(head):  # then every row was read: len(head) is all of them
            raise UnreadableFile(NO_SUCH_ROW, "header_row", row=header_row, rows=len(head))
        index = header_row - 1
        if not _filled(head[index]):
            raise UnreadableFile(EMPTY_HEADER_ROW, "header_row_empty", row=header_row)
    else:
        index = _detect_header(head)

    preview_count = min(max(PREVIEW_ROWS, index + 4), PREVIEW_MAX)
    preview = [list(row) for row in head[:preview_count]]

    header = head[index]
    # The columns from the first to the last one with anything in the header or below.
    first, last = _span(header) or (0, 0)
    rows: list[list[Any]] = []
    numbers: list[int] = []
    number = index + 1
    for record in _chain(head[index + 1 :], records):
        number += 1
        span = _span(record)
        if span is None:
            continue
        if len(rows) >= max_rows:
            raise UnreadableFile(TOO_MANY_ROWS, "too_many_rows", limit=f"{max_rows:,}")
        rows.append(record)
        numbers.append(number)
        if span[0] < first:
            first = span[0]
        if span[1] > last:
            last = span[1]
    if not rows:
        raise UnreadableFile(NO_DATA, "no_data", row=index + 1)

    headers = [_header_text(v) for v in _fit(header, first, last, empty)]
    _check_headers(headers, first)
    rows = [_fit(row, first, last, empty) for row in rows]
    width = max(((_span(row) or (0, 0))[1] for row in preview), default=0)
    preview = [_fit(row, 0, width, empty) for row in preview]
    return headers, rows, numbers, index + 1, preview


def _chain(head: list[list[Any]], rest: Iterator[list[Any]]) -> Iterator[list[Any]]:
    yield from head
    yield from rest


def _span(row: Sequence[Any]) -> tuple[int, int] | None:
    """The index of the first non-blank cell and one past the last one's; None for a
    blank row. (Written for speed: it runs once per row, and usually stops at once at
    both ends.)"""
    first = 0
    for value in row:
        if value is not None and (type(value) is not str or value.strip()):
            break
        first += 1
    else:
        return None
    for last in range(len(row) - 1, first - 1, -1):
        value = row[last]
        if value is not None and (type(value) is not str or value.strip()):
            return first, last + 1
    return first, first + 1


def _fit(row: list[Any], first: int, last: int, empty: Any) -> list[Any]:
    if first == 0 and len(row) == last:
        return row
    cells = row[first:last]
    if len(cells) < last - first:
        cells = cells + [empty] * (last - first - len(cells))
    return cells


# --- CSV -------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    """The file's text and the encoding it was read with (see the module's docstring)."""
    if encoding:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise UnreadableFile(WRONG_ENCODING, "encoding", encoding=encoding) from None
        if name == "utf-8" and data.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        try:
            return data.decode(name), name
        except (UnicodeDecodeError, ValueError):
            raise UnreadableFile(WRONG_ENCODING, "encoding", encoding=encoding) from None
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith(UTF16_BOMS):
        candidates = ["utf-16"]
    else:
        if b"\x00" in data[:1024] or data.startswith(BINARY_SIGNATURES):
            raise UnreadableFile(NOT_SPREADSHEET, "not_spreadsheet")
        candidates = ["utf-8", "gb18030"]
    for candidate in candidates:
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    if data.startswith((codecs.BOM_UTF8, *UTF16_BOMS)):
        raise UnreadableFile(NOT_SPREADSHEET, "not_spreadsheet")
    raise UnreadableFile(UNKNOWN_ENCODING, "unknown_encoding")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MARKUP = ("<html", "<table", "<?xml", "<!doctype", "<head", "<body", "<workbook")


def _check_text(text: str) -> None:
    """Refuse text that is no table: binary junk that happened to decode, or a web page
    or XML file named .xls (what some systems export)."""
    sample = text[:1024]
    if len(_CONTROL.findall(sample)) * 100 > len(sample):
        raise UnreadableFile(NOT_SPREADSHEET, "not_spreadsheet")
    start = sample.lstrip().lower()
    if start.startswith("<") and any(tag in start for tag in _MARKUP):
        raise UnreadableFile(WEB_PAGE, "web_page")


def _records(text: str, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _sniff(text: str, name: str) -> str:
    """The delimiter that splits the first records into the most consistent number of
    two or more columns (consistency first, then more columns); "," (a tab for a .tsv or
    .txt) when none splits them."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best: tuple[float, int] | None = None
    chosen = None
    for candidate in DELIMITERS:
        widths = []
        try:
            for record in _records(sample, candidate):
                if any(cell.strip() for cell in record):
                    widths.append(len(record))
                if len(widths) >= SNIFF_RECORDS:
                    break
        except csv.Error:
            continue
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        if width < 2:
            continue
        ratio = count / len(widths)
        score = (1.0 if ratio == 1 else math.floor(ratio * 10) / 10, width)
        if best is None or score > best:
            best, chosen = score, candidate
    if chosen:
        return chosen
    return "\t" if name.lower().endswith((".tsv", ".tab", ".txt")) else ","


def _read_csv(
    data: bytes,
    *,
    name: str,
    header_row: int | None,
    encoding: str | None,
    delimiter: str | None,
    max_rows: int,
) -> Table:
    if delimiter is not None and delimiter not in DELIMITERS:
        raise UnreadableFile(BAD_DELIMITER, "delimiter", delimiter=delimiter)
    text, used = _decode(data, encoding)
    text = text.removeprefix("\ufeff")
    if "\x00" in text[:1024]:  # UTF-16 read as something else, or binary
        if encoding:
            raise UnreadableFile(WRONG_ENCODING, "encoding", encoding=encoding)
        raise UnreadableFile(NOT_SPREADSHEET, "not_spreadsheet")
    _check_text(text)
    if not text.strip():
        raise UnreadableFile(EMPTY, "empty")
    text = text.replace("\r\n", "\n")
    delimiter = delimiter or _sniff(text, name)
    reader = _records(text, delimiter)
    counted = _Counted(reader)
    try:
        headers, rows, numbers, header_at, preview = _build(
            iter(counted), header_row=header_row, max_rows=max_rows, empty=""
        )
    except csv.Error:
        raise UnreadableFile(BROKEN_CSV, "broken_csv", row=counted.count + 1) from None
    return Table(
        format=CSV,
        headers=headers,
        rows=rows,
        row_numbers=numbers,
        header_row=header_at,
        encoding=used,
        delimiter=delimiter,
        preview_rows=preview,
    )


class _Counted:
    """The reader's records, counting them (to name the row where parsing failed)."""

    def __init__(self, records: Iterable[list[str]]):
        self.records, self.count = records, 0

    def __iter__(self) -> Iterator[list[str]]:
        for record in self.records:
            self.count += 1
            yield record


# --- XLSX ------------------------------------------------------------------------------


def _zip_name(names: dict[str, str], path: str) -> str | None:
    """The member of the zip at `path`, compared without case (as Excel does)."""
    return names.get(path.lower())


def _attributes(tag: bytes) -> dict[str, str]:
    """An XML start tag's attributes, namespace prefixes dropped."""
    return {
        key.decode().rsplit(":", 1)[-1]: html.unescape(value.decode("utf-8", "replace"))
        for key, _quote, value in re.findall(rb'([\w:.-]+)\s*=\s*(["\'])(.*?)\2', tag)
    }


def _sheet_parts(
    archive: zipfile.ZipFile, names: dict[str, str]
) -> tuple[dict[str, str], list[str | None]]:
    """{sheet name: the zip member of its XML} and those members in the workbook's order,
    from the workbook and its relationships (resolved as calamine resolves them)."""
    workbook = _read_member(archive, names["xl/workbook.xml"])
    rels_name = _zip_name(names, "xl/_rels/workbook.xml.rels")
    rels = _read_member(archive, rels_name) if rels_name else b""
    targets = {}
    for tag in re.findall(rb"<(?:\w+:)?Relationship\b[^>]*>", rels):
        attributes = _attributes(tag)
        target = attributes.get("Target", "")
        if target.startswith("/"):
            target = target[1:]
        elif not target.startswith("xl/"):
            target = "xl/" + target
        targets[attributes.get("Id")] = posixpath.normpath(target)
    by_name, in_order = {}, []
    for tag in re.findall(rb"<(?:\w+:)?sheet\b[^>]*>", workbook):
        attributes = _attributes(tag)
        member = _zip_name(names, targets.get(attributes.get("id"), ""))
        in_order.append(member)
        if "name" in attributes and member:
            by_name[attributes["name"]] = member
    return by_name, in_order


def _read_member(archive: zipfile.ZipFile, member: str) -> bytes:
    """A small part (the workbook's list of sheets, its relationships), whole."""
    with archive.open(member) as stream:
        content = stream.read(MAX_SMALL_PART + 1)
    if len(content) > MAX_SMALL_PART:
        raise UnreadableFile(DAMAGED, "damaged")
    return content


def _check_unpacked_size(archive: zipfile.ZipFile, member: str) -> None:
    """Refuse a member that unpacks to more than MAX_XML_BYTES (checked by unpacking it:
    the size a zip declares may lie)."""
    total = 0
    with archive.open(member) as stream:
        while chunk := stream.read(MB):
            total += len(chunk)
            if total > MAX_XML_BYTES:
                raise UnreadableFile(DAMAGED, "damaged")


# A row's or cell's reference (r="12", r="AB12"): its row number; a cell's in columns AA and
# beyond: its letters; in columns A..Z: its letter (looked for only when it matters).
_ROW_REF = re.compile(rb'\sr\s*=\s*["\'][A-Z]{0,3}([0-9]{1,7})["\']')
_WIDE_REF = re.compile(rb'\sr\s*=\s*["\']([A-Z]{2,3})[0-9]')
_NARROW_REF = re.compile(rb'\sr\s*=\s*["\']([A-Z])[0-9]')


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _check_sheet_extent(archive: zipfile.ZipFile, member: str, sheet: str) -> None:
    """Refuse a sheet whose block from A1 to its furthest cell (by the row and cell
    references in its XML) is over MAX_CELLS, or that unpacks to over MAX_XML_BYTES."""
    rows = columns = cells = row_tags = 0
    for body in _xml_pieces(archive, member):
        numbers = _ROW_REF.findall(body)
        if numbers:
            rows = max(rows, max(map(int, numbers)))
        wide = set(_WIDE_REF.findall(body))
        if wide:
            columns = max(columns, max(map(_column_number, wide)))
        cells += body.count(b"<c ") + body.count(b"<c>") + body.count(b":c ")
        row_tags += body.count(b"<row") + body.count(b":row")
    rows = max(rows, row_tags)
    if not columns and rows * 26 > MAX_CELLS:  # A..Z only: which is the last?
        letters = set()
        for body in _xml_pieces(archive, member):
            letters.update(_NARROW_REF.findall(body))
        columns = max(map(_column_number, letters), default=0)
    elif not columns:
        columns = 26
    if rows * max(columns, 1) > MAX_CELLS or cells > MAX_CELLS:
        raise UnreadableFile(
            SHEET_TOO_LARGE,
            "sheet_too_large",
            sheet=sheet,
            cell=f"{column_letter(max(columns, 1) - 1)}{rows}",
        )


def _xml_pieces(archive: zipfile.ZipFile, member: str) -> Iterator[bytes]:
    """The member unpacked in pieces of about 4 MB, each cut before a tag (so no reference
    is split), refused past MAX_XML_BYTES."""
    rest, total = b"", 0
    with archive.open(member) as stream:
        while chunk := stream.read(4 * MB):
            total += len(chunk)
            if total > MAX_XML_BYTES:
                raise UnreadableFile(DAMAGED, "damaged")
            buffer = rest + chunk
            cut = buffer.rfind(b"<")
            if cut > 0:
                yield buffer[:cut]
                rest = buffer[cut:]
            else:
                rest = buffer
    if rest:
        yield rest


@dataclass
class _Book:
    archive: zipfile.ZipFile
    parts: dict[str, str]  # sheet name: the zip member of its XML
    parts_in_order: list[str | None]
    workbook: Any  # python_calamine.CalamineWorkbook
    sheet_names: list[str]


def _open_xlsx(data: bytes) -> _Book:
    """The workbook (its zip, where each sheet's XML is, calamine's reader), or the
    reason it cannot be read."""
    from python_calamine import CalamineWorkbook

    with _damaged_on_error():
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = {info.filename.lower(): info.filename for info in archive.infolist()}
    if "xl/workbook.xml" not in names:
        if "xl/workbook.bin" in names:
            raise UnreadableFile(XLSB, "xlsb")
        if any(lower.startswith("xl/") for lower in names):
            raise UnreadableFile(DAMAGED, "damaged")
        raise UnreadableFile(NOT_SPREADSHEET, "not_spreadsheet")  # a .docx, an .ods, a zip
    with _damaged_on_error():
        for lower, member in names.items():
            if lower.endswith((".xml", ".rels")) and not lower.startswith("xl/worksheets/"):
                _check_unpacked_size(archive, member)
        parts, in_order = _sheet_parts(archive, names)
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        return _Book(archive, parts, in_order, workbook, list(workbook.sheet_names))


@contextmanager
def _damaged_on_error() -> Iterator[None]:
    """Whatever a damaged zip or workbook raises, as DAMAGED: zipfile's and calamine's
    errors, and a panic inside calamine (pyo3's PanicException derives from
    BaseException only). Interrupts and exits pass."""
    try:
        yield
    except UnreadableFile:
        raise
    except Exception:
        raise UnreadableFile(DAMAGED, "damaged") from None
    except BaseException as error:
        if type(error).__name__ != "PanicException":
            raise
        raise UnreadableFile(DAMAGED, "damaged") from None


def _cells(row: list[Any]) -> list[Any]:
    return [None if value == "" else value for value in row]


def _load_sheet(book: _Book, sheet: str) -> list[list[Any]]:
    """The sheet's rows from A1 (row 1 first), once its extent is known to be safe.
    Its XML is found by name, else by position (calamine lists the sheets in the
    workbook's order)."""
    member = book.parts.get(sheet)
    names, in_order = book.sheet_names, book.parts_in_order
    if member is None and sheet in names and len(in_order) == len(names):
        member = in_order[names.index(sheet)]
    if member is None:
        raise UnreadableFile(DAMAGED, "damaged")
    with _damaged_on_error():
        _check_sheet_extent(book.archive, member, sheet)
        return book.workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def _read_xlsx(data: bytes, *, sheet: str | None, header_row: int | None, max_rows: int) -> Table:
    from python_calamine import SheetTypeEnum, SheetVisibleEnum

    book = _open_xlsx(data)
    with _damaged_on_error():
        metadata = book.workbook.sheets_metadata
        visible = [
            m.name
            for m in metadata
            if m.visible == SheetVisibleEnum.Visible and m.typ == SheetTypeEnum.WorkSheet
        ]
        worksheets = {m.name for m in metadata if m.typ == SheetTypeEnum.WorkSheet}
    if sheet is not None:
        if sheet not in worksheets:
            raise UnreadableFile(NO_SHEET, "sheet", sheet=sheet)
        chosen, rows = sheet, _load_sheet(book, sheet)
    else:
        chosen, rows = "", []
        for name in visible:
            rows = _load_sheet(book, name)
            if any(_filled(row) for row in rows):
                chosen = name
                break
        if not chosen:
            raise UnreadableFile(EMPTY, "empty")
    headers, table_rows, numbers, header_at, preview = _build(
        (_cells(row) for row in rows),
        header_row=header_row,
        max_rows=max_rows,
        empty=None,
        sheet=chosen,
    )
    return Table(
        format=XLSX,
        headers=headers,
        rows=table_rows,
        row_numbers=numbers,
        header_row=header_at,
        sheet=chosen,
        sheets=visible,
        preview_rows=preview,
    )


# --- The error report ------------------------------------------------------------------


def write_error_report(
    table: Table, rows: list[tuple[int, list[Any], str]], *, error_header: str
) -> bytes:
    """The refused `rows` ((row number in the file, the row's values as read, the
    error)) as a file like the upload: its headers and one more column, `error_header`,
    holding each row's error. A column already named `error_header` (a report uploaded
    again) is replaced, not repeated."""
    error_header = str(error_header)
    keep = [i for i, h in enumerate(table.headers) if match_key(h) != match_key(error_header)]
    headers = [table.headers[i] for i in keep] + [error_header]
    width = len(table.headers)
    body = []
    for _number, values, error in rows:
        values = list(values)[:width]
        values += [None] * (width - len(values))
        body.append([values[i] for i in keep] + [str(error)])
    if table.format == XLSX:
        return _xlsx_report(table.sheet, headers, body)
    encoding = table.encoding or "utf-8-sig"
    if encoding.startswith("utf-16"):
        encoding = "utf-16"  # with its byte-order mark, which tells the reader the encoding
    return _csv_report(encoding, table.delimiter or ",", headers, body)


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return csv_safe(str(value))


def _csv_report(encoding: str, delimiter: str, headers: list[str], body: list[list[Any]]):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([_csv_text(h) for h in headers])
    writer.writerows([_csv_text(v) for v in row] for row in body)
    return buffer.getvalue().encode(encoding, errors="replace")


_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")


def _xlsx_report(sheet: str, headers: list[str], body: list[list[Any]]) -> bytes:
    """Numbers stay numbers and dates dates (openpyxl gives them a date format); text is
    always a text cell, so "=…" is never a formula nor "#N/A" an error. Plain values
    where that is enough: a styled cell costs ~20 times as much to write, and a report
    may hold every row of the upload."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    title = _SHEET_TITLE_FORBIDDEN.sub(" ", sheet).strip("' ")[:31] or "Sheet1"
    out = book.create_sheet(title=title)
    out.freeze_panes = "A2"

    def as_text(text: str) -> WriteOnlyCell:
        written = WriteOnlyCell(out, value=text)
        written.data_type = "s"
        return written

    def cell(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, date, time, timedelta)):
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("", str(value))
        if text.startswith("=") or text in ERROR_CODES:
            return as_text(text)
        return text or None

    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        written = as_text(ILLEGAL_CHARACTERS_RE.sub("", header)) if header else None
        if written is not None:
            written.font = bold
        header_cells.append(written)
    out.append(header_cells)
    for row in body:
        out.append([cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
