"""imports.readers: an uploaded CSV or .xlsx as one table (header row found under title
rows, values as the file holds them), a refusal that says what to do for anything else,
and the error report that reads back as the upload read. No database is needed."""

from __future__ import annotations

import codecs
import csv
import io
import random
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from openpyxl import Workbook, load_workbook

from imports import readers
from imports.readers import Table, UnreadableFile, read_table, write_error_report

SAMPLES = Path(__file__).resolve().parent / "samples"
OLE2 = bytes.fromhex("d0cf11e0a1b11ae1")


@pytest.fixture(autouse=True)
def _in_english():
    with translation.override("en"):
        yield


def read(data: bytes, name: str = "upload.csv", **options) -> Table:
    return read_table(io.BytesIO(data), name=name, **options)


def refusal(data: bytes, name: str = "upload.csv", **options) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as exc:
        read(data, name, **options)
    assert exc.value.message == str(exc.value)
    return exc.value


def xlsx(*sheets: tuple[str, list[list]], hidden: tuple[str, ...] = ()) -> bytes:
    """A workbook of (title, rows) sheets, row 1 first; None is an empty cell."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if title in hidden:
            sheet.sheet_state = "hidden"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def sample(name: str) -> Table:
    with open(SAMPLES / name, "rb") as file:
        return read_table(file, name=name)


def as_calamine(value):
    """What python-calamine gives for a value openpyxl reads: numbers as floats, a
    midnight datetime as a date."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, datetime) and value == datetime.combine(value.date(), datetime.min.time()):
        return value.date()
    return value


# --- The samples -------------------------------------------------------------------------


def test_customers_sample_reads_every_row_as_openpyxl_does():
    table = sample("customers_messy.xlsx")
    assert (table.format, table.sheet, table.sheets, table.header_row) == (
        "xlsx",
        "客户",
        ["客户"],
        1,
    )
    assert (table.encoding, table.delimiter) == ("", "")
    assert table.headers == [
        "客户名称",
        "客户类型",
        "客户来源",
        "客户等级",
        "所属行业",
        "手机号",
        "固定电话",
        "邮箱",
        "身份证号",
        "成立日期",
        "地址",
        "备注",
        "年营业额(万元)",
    ]
    # A formula's value as last computed (the sample's =HYPERLINK cells never were: None).
    sheet = load_workbook(SAMPLES / "customers_messy.xlsx", data_only=True).active
    expected = {
        number: [as_calamine(v) for v in row]
        for number, row in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2)
        if any(v is not None and str(v).strip() for v in row)
    }
    assert len(table.rows) == len(expected) == 517
    assert dict(zip(table.row_numbers, table.rows, strict=True)) == expected


def test_customers_sample_keeps_the_tricky_cells_as_excel_stored_them():
    table = sample("customers_messy.xlsx")
    rows = dict(zip(table.row_numbers, table.rows, strict=True))
    column = {header: index for index, header in enumerate(table.headers)}
    phone, ident, founded = column["手机号"], column["身份证号"], column["成立日期"]
    assert rows[2][phone] == 18900602677.0  # a phone stored as a number
    assert rows[3][phone] == "+86 139-5562-7995"
    assert rows[2][ident] == "354684874526859693"  # an ID stored as text
    assert rows[8][ident] == 7.476863112972756e17  # one Excel has rounded
    assert rows[2][founded] == "2012年06月08日"
    assert rows[5][founded] == date(2004, 8, 13)  # a real date cell
    assert rows[5][0] == "  杭州鹏鹏贸易有限公司 "  # values are not stripped
    assert rows[2][column["备注"]] is None  # an empty cell
    assert table.preview_rows[0] == table.headers


def test_deals_sample():
    table = sample("deals.xlsx")
    assert table.header_row == 1
    assert table.headers == [
        "商机名称",
        "客户名称",
        "金额",
        "预计成交日期",
        "销售阶段",
        "赢率",
        "负责人",
    ]
    assert len(table.rows) == 300
    assert table.row_numbers[:2] == [2, 3] and table.row_numbers[-1] == 301
    assert table.rows[0] == [
        "批发订单-990",
        "杭州涛兰贸易有限公司",
        440790.0,
        date(2026, 9, 27),
        "合同",
        "10%",
        "sales1",
    ]
    assert table.rows[1][5] == 0.5  # a percentage cell
    assert table.rows[2][2] == "11万"


@pytest.mark.parametrize(
    ("name", "encoding"), [("leads_gbk.csv", "gb18030"), ("leads_utf8.csv", "utf-8-sig")]
)
def test_lead_samples(name, encoding):
    table = sample(name)
    assert (table.format, table.encoding, table.delimiter) == ("csv", encoding, ",")
    assert (table.sheet, table.sheets, table.header_row) == ("", [], 1)
    assert table.headers == [
        "姓名",
        "公司",
        "职位",
        "手机",
        "邮箱",
        "线索来源",
        "线索状态",
        "负责人",
        "创建时间",
        "需求描述",
    ]
    text = (SAMPLES / name).read_bytes().decode(encoding)
    expected = [
        [cell.replace("\r\n", "\n") for cell in row]
        for row in csv.reader(io.StringIO(text, newline=""))
    ][1:]
    assert table.rows == expected
    assert len(table.rows) == 300 and table.row_numbers == list(range(2, 302))
    assert all(isinstance(row[3], str) and row[3].isdigit() for row in table.rows)  # phones
    assert "询问交期，要求\n分批发货" in {row[9] for row in table.rows}  # a quoted newline


# --- CSV ---------------------------------------------------------------------------------

CUSTOMERS = "客户名称,手机,城市\n张三,13800138000,上海\n李四,,北京\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (CUSTOMERS.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + CUSTOMERS.encode("utf-8"), "utf-8-sig"),
        (CUSTOMERS.encode("gbk"), "gb18030"),
        (CUSTOMERS.encode("gb18030"), "gb18030"),
        (CUSTOMERS.encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + CUSTOMERS.encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF16_LE + CUSTOMERS.replace(",", "\t").encode("utf-16-le"), "utf-16"),
    ],
)
def test_csv_encodings(data, encoding):
    table = read(data)
    assert table.encoding == encoding
    assert table.headers == ["客户名称", "手机", "城市"]
    assert table.rows == [["张三", "13800138000", "上海"], ["李四", "", "北京"]]
    assert table.row_numbers == [2, 3]


def test_an_encoding_can_be_chosen():
    data = CUSTOMERS.encode("gbk")
    assert read(data, encoding="gbk").encoding == "gbk"
    assert read(data, encoding="GB18030").headers == ["客户名称", "手机", "城市"]
    assert refusal(data, encoding="utf-8").code == "encoding"
    assert refusal(CUSTOMERS.encode("utf-16-le"), encoding="utf-8").code == "encoding"
    error = refusal(data, encoding="klingon")
    assert error.message == "This file cannot be read as klingon: choose another encoding."


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(delimiter):
    rows = [["名称", "金额", "备注"], ["甲公司", "1,5", "说明; 见附件"], ["乙公司", "2", "x|y"]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    table = read(buffer.getvalue().encode())
    assert table.delimiter == delimiter
    assert [table.headers, *table.rows] == rows


def test_a_semicolon_file_with_decimal_commas_is_not_split_on_the_commas():
    data = b"name;amount;rate\nA;1,5;0,25\nB;2,75;1,5\nC;3;0,1\n"
    table = read(data)
    assert table.delimiter == ";"
    assert table.rows[0] == ["A", "1,5", "0,25"]


def test_a_delimiter_can_be_chosen():
    table = read(b"a;b,c\n1;2,3\n", delimiter=",")
    assert table.headers == ["a;b", "c"]
    assert refusal(b"a,b\n1,2\n", delimiter="x").code == "delimiter"


def test_single_column():
    table = read("姓名\n张三\n李四\n".encode())
    assert (table.delimiter, table.headers, table.rows) == (",", ["姓名"], [["张三"], ["李四"]])
    assert read(b"name\nann\n", name="names.tsv").delimiter == "\t"


def test_quoted_newlines_and_crlf():
    data = b'name,note\r\n"A","line 1\r\nline 2"\r\nB,"say ""hi"""\r\nC,plain\r\n'
    table = read(data)
    assert table.rows == [["A", "line 1\nline 2"], ["B", 'say "hi"'], ["C", "plain"]]
    assert table.row_numbers == [2, 3, 4]  # rows of the table, as Excel numbers them


def test_old_mac_line_endings():
    assert read(b"a,b\r1,2\r3,4\r").rows == [["1", "2"], ["3", "4"]]


def test_values_stay_the_files_strings():
    table = read(b'phone,amount,date\n 013800138000 ,"1,000.50",2026-01-05\n')
    assert table.rows == [[" 013800138000 ", "1,000.50", "2026-01-05"]]


def test_header_cells_are_stripped_and_short_rows_padded():
    table = read(b" name , phone ,\nA,1\nB,2,extra\n")
    assert table.headers == ["name", "phone", ""]
    assert table.rows == [["A", "1", ""], ["B", "2", "extra"]]


def test_empty_rows_are_dropped_but_counted():
    table = read(b"a,b\n\n1,2\n,\n , \n3,4\n")
    assert table.rows == [["1", "2"], ["3", "4"]]
    assert table.row_numbers == [3, 6]


def test_empty_edge_columns_are_cut_off():
    table = read(b",a,b,,\n,1,2,,\n,3,,,\n")
    assert table.headers == ["a", "b"]
    assert table.rows == [["1", "2"], ["3", ""]]


# --- The header row ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "above",
    [
        "2026年客户名单\n",
        "2026年客户名单,,\n\n",  # as Excel saves a title row
        "客户名单\n导出时间：2026-01-05 10:00\n\n",
        "客户名单,导出人：张三\n",  # two cells, but far narrower than the table
    ],
)
def test_title_rows_above_the_header_are_skipped(above):
    data = (
        above + "客户名称,手机,城市,备注\n张三,13800138000,上海,\n李四,13900139000,北京,x\n"
    ).encode()
    table = read(data)
    title_rows = above.count("\n")
    assert table.header_row == title_rows + 1
    assert table.headers == ["客户名称", "手机", "城市", "备注"]
    assert table.row_numbers == [title_rows + 2, title_rows + 3]
    assert table.preview_rows[0][0] == above.split(",")[0].split("\n")[0]
    assert len(table.preview_rows) == title_rows + 3


def test_a_header_with_gaps_is_found_by_the_data_below_it():
    table = read("姓名,,手机\n张三,男,13800138000\n李四,女,13900139000\n".encode())
    assert table.header_row == 1
    assert table.headers == ["姓名", "", "手机"]


def test_a_header_of_numbers_falls_back_to_the_first_widest_row():
    assert read(b"2024,2025,2026\n1,2,3\n").header_row == 1


def test_title_rows_in_a_workbook():
    data = xlsx(
        (
            "客户",
            [
                ["2026年客户名单"],
                [],
                [None, "客户名称", "手机", "成立日期"],
                [None, "甲公司", 13800138000, datetime(2020, 5, 1)],
                [None, "乙公司", None, "2021/03/04"],
            ],
        )
    )
    table = read(data, "客户.xlsx")
    assert table.header_row == 3
    assert table.headers == ["客户名称", "手机", "成立日期"]
    assert table.rows == [
        ["甲公司", 13800138000.0, date(2020, 5, 1)],
        ["乙公司", None, "2021/03/04"],
    ]
    assert table.row_numbers == [4, 5]
    assert table.preview_rows[0] == ["2026年客户名单", None, None, None]
    assert len(table.preview_rows) == 5


def test_a_header_row_can_be_chosen():
    data = "2026年客户名单\n\n客户名称,手机\n张三,13800138000\n".encode()
    table = read(data, header_row=1)
    assert table.header_row == 1
    assert table.headers == ["2026年客户名单", ""]
    assert table.rows == [["客户名称", "手机"], ["张三", "13800138000"]]
    assert table.row_numbers == [3, 4]
    assert read(data, header_row=3).headers == ["客户名称", "手机"]


def test_a_chosen_header_row_must_exist_and_hold_names():
    data = "2026年客户名单\n\n客户名称,手机\n张三,13800138000\n".encode()
    error = refusal(data, header_row=9)
    assert (error.code, error.message) == ("header_row", "There is no row 9: the file has 4 rows.")
    error = refusal(data, header_row=0)
    assert (error.code, error.message) == (
        "header_row",
        "There is no row 0: rows are numbered from 1.",
    )
    error = refusal(data, header_row=2)
    assert error.code == "header_row_empty"
    assert error.message == "Row 2 is empty: choose the row that holds the column names."
    assert refusal(data, header_row=4).code == "no_data"


# --- Workbooks ---------------------------------------------------------------------------


def test_the_first_visible_sheet_with_data_is_read_unless_one_is_chosen():
    data = xlsx(
        ("字典", [["级别", "代码"], ["VIP", "1"]]),
        ("Sheet1", []),
        ("客户", [["名称", "手机"], ["甲公司", 13800138000]]),
        ("商机", [["名称", "金额"], ["大单", 100000]]),
        hidden=("字典",),
    )
    table = read(data, "book.xlsx")
    assert (table.sheet, table.sheets) == ("客户", ["Sheet1", "客户", "商机"])
    assert table.rows == [["甲公司", 13800138000.0]]
    chosen = read(data, "book.xlsx", sheet="商机")
    assert (chosen.sheet, chosen.headers, chosen.rows) == (
        "商机",
        ["名称", "金额"],
        [["大单", 100000.0]],
    )
    assert read(data, "book.xlsx", sheet="字典").rows == [["VIP", "1"]]  # hidden, but asked for
    error = refusal(data, "book.xlsx", sheet="Sheet1")
    assert (error.code, error.message) == ("empty", "The sheet “Sheet1” is empty.")
    error = refusal(data, "book.xlsx", sheet="线索")
    assert (error.code, error.message) == ("sheet", "This workbook has no sheet “线索”.")


def test_workbook_cells():
    data = xlsx(
        (
            "S",
            [
                ["text", "int", "float", "date", "datetime", "flag", "empty", "formula-like"],
                ["a", 7, 12.5, date(2026, 1, 2), datetime(2026, 1, 2, 9, 30), True, None, "x"],
            ],
        )
    )
    row = read(data, "s.xlsx").rows[0]
    assert row == ["a", 7.0, 12.5, date(2026, 1, 2), datetime(2026, 1, 2, 9, 30), True, None, "x"]


def test_a_stray_value_far_below_the_table_is_read():
    book = Workbook()
    book.active.append(["name", "phone"])
    book.active.append(["A", 1])
    book.active.cell(row=1_048_576, column=2).value = "x"
    buffer = io.BytesIO()
    book.save(buffer)
    table = read(buffer.getvalue(), "far.xlsx")
    assert table.row_numbers == [2, 1_048_576]
    assert table.rows[1] == [None, "x"]


def test_a_sheet_reaching_far_to_the_right_and_below_is_refused_not_allocated():
    """calamine holds A1..the last cell as one block: XFD1048576 would be 17 billion
    cells, and its allocation failure aborts the whole process."""
    book = Workbook()
    book.active.title = "客户"
    book.active.append(["name", "phone"])
    book.active.append(["A", 1])
    book.active.cell(row=1_048_576, column=16_384).value = "x"
    buffer = io.BytesIO()
    book.save(buffer)
    error = refusal(buffer.getvalue(), "far.xlsx")
    assert error.code == "sheet_too_large"
    assert error.message == (
        "The sheet “客户” has cells as far as XFD1048576: delete everything below and to "
        "the right of your table, or split the file."
    )


def test_the_cell_limit_counts_the_block_from_a1(monkeypatch):
    data = xlsx(("S", [["a", "b", "c"], *[[1, 2, 3]] * 10]))
    monkeypatch.setattr(readers, "MAX_CELLS", 33)
    assert len(read(data, "s.xlsx").rows) == 10
    monkeypatch.setattr(readers, "MAX_CELLS", 32)
    error = refusal(data, "s.xlsx")
    assert (error.code, error.params["cell"]) == ("sheet_too_large", "C11")


def test_a_part_that_unpacks_too_far_is_refused(monkeypatch):
    data = xlsx(("S", [["a"], *[["x" * 100]] * 100]))
    monkeypatch.setattr(readers, "MAX_XML_BYTES", 5_000)
    assert refusal(data, "s.xlsx").code == "damaged"


# --- Refusals ----------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_naming_both_sizes(settings):
    data = b"a,b\n" + b"1,2\n" * (3 * 1024 * 1024 // 4 - 1)  # 3 MB exactly
    error = refusal(data, max_bytes=2 * 1024 * 1024)
    assert error.code == "too_big"
    assert error.message == "This file is 3 MB; files of up to 2 MB can be imported."
    upload = SimpleUploadedFile("big.csv", data[: 1024 * 1024 + 1])
    settings.CRM_IMPORT_MAX_BYTES = 1024 * 1024
    with pytest.raises(UnreadableFile) as exc:
        read_table(upload, name="big.csv")
    assert exc.value.message == "This file is 1.1 MB; files of up to 1 MB can be imported."
    assert read(data[: 1024 * 1024], max_rows=10**6).headers == ["a", "b"]  # the limit


def test_a_file_over_the_row_limit_is_refused_naming_the_limit(settings):
    data = b"a,b\n" + b"1,2\n" * 3
    assert len(read(data, max_rows=3).rows) == 3
    error = refusal(data + b"\n\n", max_rows=2)
    assert error.code == "too_many_rows"
    assert error.message == (
        "This file has more than 2 rows of data: split the file into parts of at most 2 rows each."
    )
    settings.CRM_IMPORT_MAX_ROWS = 2
    assert refusal(xlsx(("S", [["a"], [1], [2], [3]])), "s.xlsx").code == "too_many_rows"
    assert refusal(data).params == {"limit": "2"}


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"a,b\x00\x01\x02\x03\n",
        b"GIF89a" + b"\x01" * 50,
        b"name,x\n" + random.Random(7).randbytes(2000).translate(bytes(range(32)) * 8),
    ],
    ids=["png", "pdf", "jpeg", "nul", "gif", "controls"],
)
def test_what_is_no_spreadsheet_is_refused(data):
    error = refusal(data, "photo.csv")
    assert error.code == "not_spreadsheet"
    assert error.message == "This file is not a spreadsheet: upload a .csv or .xlsx file."


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_zips_that_are_no_workbook():
    docx = zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    assert refusal(docx, "report.xlsx").code == "not_spreadsheet"
    assert refusal(zipped({"customers.csv": b"a,b\n1,2\n"}), "c.zip").code == "not_spreadsheet"
    assert refusal(b"PK\x05\x06" + bytes(18), "empty.zip").code == "not_spreadsheet"
    error = refusal(zipped({"xl/workbook.bin": b"\x00"}), "book.xlsb")
    assert error.message == "This workbook is in the binary .xlsb format: save it as .xlsx."


@pytest.mark.parametrize("name", ["secret.xlsx", "old.xls", "whatever.csv"])
def test_an_encrypted_workbook_or_an_old_xls_is_refused(name):
    error = refusal(OLE2 + b"\xfe\xff" + bytes(510), name)
    assert error.code == "protected"
    assert error.message == (
        "This workbook is password-protected or in the old .xls format: save it as .xlsx "
        "without a password."
    )


def test_a_damaged_workbook_is_refused():
    good = xlsx(("S", [["a", "b"], [1, 2]]))
    assert refusal(good[: len(good) // 2], "s.xlsx").code == "damaged"
    broken = zipped({"[Content_Types].xml": b"<", "xl/workbook.xml": b"<workbook><sheets>"})
    error = refusal(broken, "s.xlsx")
    assert error.code == "damaged"
    assert error.message.startswith("This workbook is damaged and cannot be read")
    parts = zipfile.ZipFile(io.BytesIO(good))
    corrupt = {n: parts.read(n) for n in parts.namelist()}
    corrupt["xl/worksheets/sheet1.xml"] = b"<worksheet><sheetData><row r='1'><c r='A1' t='s'>"
    assert refusal(zipped(corrupt), "s.xlsx").code == "damaged"


@pytest.mark.parametrize(
    "data",
    [b"", b"  \r\n\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b",,,\n, ,\n"],
    ids=["nothing", "blank", "bom", "utf16-bom", "delimiters"],
)
def test_an_empty_file_is_refused(data):
    error = refusal(data)
    assert (error.code, error.message) == (
        "empty",
        "This file is empty: there is nothing to import.",
    )


def test_an_empty_workbook_is_refused():
    assert refusal(xlsx(("Sheet1", []), ("Sheet2", [[None, " "]])), "e.xlsx").code == "empty"


def test_column_names_without_rows_are_refused():
    error = refusal("\n名称,手机\n\n".encode())
    assert error.code == "no_data"
    assert error.message == "There are no rows of data below the column names (row 2)."


@pytest.mark.parametrize(
    ("header", "name", "columns"),
    [
        ("姓名,手机,姓名", "姓名", ("A", "C")),
        ("Email,phone, email ", "email", ("A", "C")),
        ("ＶＩＰ,vip,x", "vip", ("A", "B")),
    ],
)
def test_a_header_used_twice_is_refused_naming_it(header, name, columns):
    error = refusal(f"{header}\n1,2,3\n".encode())
    assert error.code == "duplicate_header"
    assert error.message == (
        f"The column name “{name}” is used twice (columns {columns[0]} and {columns[1]}): "
        "give each column its own name."
    )


def test_empty_header_cells_are_no_duplicates():
    assert read(b"a,,,b\n1,2,3,4\n").headers == ["a", "", "", "b"]


def test_text_in_no_known_encoding_is_refused():
    error = refusal(b"name,city\nA,\xff\xfe\xfd\xfc\n")
    assert error.code == "unknown_encoding"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body><table><tr><td>a</td></tr></table></body></html>",
        b'  <?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
    ],
)
def test_a_web_page_named_xls_is_refused(data):
    assert refusal(data, "export.xls").code == "web_page"


def test_an_unclosed_quote_is_refused_naming_the_row():
    data = b'a,b\n1,2\n3,"' + b"x" * 200_000 + b"\n4,5\n"
    error = refusal(data)
    assert error.code == "broken_csv"
    assert error.message == (
        "This file cannot be read from row 3 on: a quotation mark there is probably never closed."
    )


def test_the_message_is_in_the_users_language():
    with translation.override("zh-hans"):
        error = refusal(b"")
    assert error.template is readers.EMPTY
    assert str(error.template) % error.params == "This file is empty: there is nothing to import."


# --- Any bytes: a table or a refusal, never another exception -----------------------------


def outcome(data: bytes, name: str) -> str:
    try:
        read(data, name)
    except UnreadableFile as error:
        return error.code
    return "table"


def test_random_bytes_give_a_table_or_a_refusal():
    generator = random.Random(20260101)
    for _ in range(300):
        size = generator.choice([1, 2, 10, 100, 1000, 5000])
        data = generator.randbytes(size)
        outcome(data, generator.choice(["x.csv", "x.xlsx"]))
        outcome(readers.ZIP_SIGNATURE + data, "x.xlsx")
        outcome(OLE2 + data, "x.xls")


def test_random_text_gives_a_table_or_a_refusal():
    generator = random.Random(42)
    alphabet = ['"', '"', ",", ";", "\t", "|", "\n", "\r", " ", "a", "1", "名", "'", "="]
    outcomes = set()
    for _ in range(300):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randrange(1, 400)))
        encoding = generator.choice(["utf-8", "utf-8-sig", "gb18030", "utf-16"])
        outcomes.add(outcome(text.encode(encoding), "x.csv"))
    assert "table" in outcomes


def test_pathological_quotes_are_read_in_linear_time():
    """csv.Sniffer takes over a minute on 64 KB of these; the delimiter detection here
    parses the sample once per delimiter."""
    for text in ['"\n' * 40_000, ',"a' * 30_000, ",'" * 40_000, 'a,"b\n' * 15_000]:
        outcome(text.encode(), "x.csv")


def test_truncated_and_corrupted_files_give_a_table_or_a_refusal():
    workbook = (SAMPLES / "deals.xlsx").read_bytes()
    gbk = (SAMPLES / "leads_gbk.csv").read_bytes()
    generator = random.Random(1)
    for cut in sorted(generator.sample(range(1, len(workbook)), 60)):
        outcome(workbook[:cut], "deals.xlsx")
    for cut in sorted(generator.sample(range(1, len(gbk)), 30)):
        outcome(gbk[:cut], "leads.csv")
    for _ in range(60):
        corrupted = bytearray(workbook)
        for _flip in range(generator.randrange(1, 20)):
            corrupted[generator.randrange(len(corrupted))] = generator.randrange(256)
        outcome(bytes(corrupted), "deals.xlsx")


def test_workbooks_with_damaged_parts_give_a_table_or_a_refusal():
    """Each part of a workbook cut short, garbled or flipped in places, zipped again
    (so that calamine, not the zip's checksums, meets the damage)."""
    workbook = zipfile.ZipFile(io.BytesIO((SAMPLES / "deals.xlsx").read_bytes()))
    parts = {name: workbook.read(name) for name in workbook.namelist()}
    generator = random.Random(3)
    outcomes = set()
    for name, content in parts.items():
        for _ in range(10):
            damaged = bytearray(content)
            if generator.random() < 0.5:
                cut = generator.randrange(len(content) + 1)
                damaged = damaged[:cut] + generator.randbytes(generator.randrange(0, 20))
            else:
                for _flip in range(generator.randrange(1, 10)):
                    damaged[generator.randrange(len(damaged))] = generator.choice(b'<>/"=r0A\x00')
            outcomes.add(outcome(zipped({**parts, name: bytes(damaged)}), "deals.xlsx"))
    assert {"table", "damaged"} <= outcomes


# --- The error report --------------------------------------------------------------------

REPORT_ROWS = [
    ["甲公司", "13800138000", "1,5", "第一行\n第二行"],
    ["乙公司", "", '说 "引号"', "a;b|c\td"],
    ["丙公司", "-5", "+86 139", "普通"],
]


def failed(table: Table, errors: dict[int, str]) -> list[tuple[int, list, str]]:
    return [
        (number, row, errors[number])
        for number, row in zip(table.row_numbers, table.rows, strict=True)
        if number in errors
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_csv_error_report_reads_back_like_the_upload(encoding, delimiter):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerows([["客户名称", "手机", "金额", "备注"], *REPORT_ROWS])
    table = read(buffer.getvalue().encode(encoding))
    assert (table.encoding, table.delimiter) == (encoding, delimiter)

    errors = {2: "手机号不正确：“13800138000”", 4: "金额, 无法识别"}
    report = write_error_report(table, failed(table, errors), error_header="错误")
    boms = {"utf-8-sig": codecs.BOM_UTF8, "utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)}
    if encoding in boms:
        assert report.startswith(boms[encoding])
    else:
        assert not report.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE))

    again = read(report, "report.csv")
    assert (again.encoding, again.delimiter, again.header_row) == (encoding, delimiter, 1)
    assert again.headers == ["客户名称", "手机", "金额", "备注", "错误"]
    assert again.rows == [
        [*REPORT_ROWS[0], "手机号不正确：“13800138000”"],
        [*REPORT_ROWS[2], "金额, 无法识别"],
    ]


def test_a_csv_report_keeps_formulas_inert():
    table = read(b'name,note\nA,=HYPERLINK("http://x")\nB,@SUM(1)\nC,-5\n')
    report = write_error_report(
        table, failed(table, {2: "=bad", 3: "x", 4: "y"}), error_header="=error"
    )
    again = read(report)
    assert again.headers == ["name", "note", "'=error"]
    assert [row[1:] for row in again.rows] == [
        ['\'=HYPERLINK("http://x")', "'=bad"],
        ["'@SUM(1)", "x"],
        ["-5", "y"],  # a number is no formula
    ]


def test_an_xlsx_error_report_reads_back_like_the_upload():
    table = sample("customers_messy.xlsx")
    errors = {2: "手机号不正确", 5: "成立日期无法识别", 8: "身份证号已被 Excel 舍入"}
    report = write_error_report(table, failed(table, errors), error_header="错误")
    again = read(report, "report.xlsx")
    assert (again.format, again.sheet, again.header_row) == ("xlsx", "客户", 1)
    assert again.headers == [*table.headers, "错误"]
    originals = dict(zip(table.row_numbers, table.rows, strict=True))
    assert again.rows == [[*originals[number], error] for number, error in errors.items()]
    assert again.rows[0][5] == 18900602677.0  # still a number
    assert again.rows[1][9] == date(2004, 8, 13)  # still a date
    assert again.rows[2][8] == 7.476863112972756e17


def test_an_xlsx_report_writes_formula_like_text_as_text():
    book = Workbook()
    for row in [["name", "note", "n"], ["A", "=1+2", 3], ["B", "-x", -4], ["C", "@a", 0]]:
        book.active.append(row)
    book.active["B2"].data_type = "s"  # text typed after an apostrophe
    buffer = io.BytesIO()
    book.save(buffer)
    table = read(buffer.getvalue(), "s.xlsx")
    assert table.rows[0] == ["A", "=1+2", 3.0]
    report = write_error_report(table, failed(table, {2: "e", 3: "f", 4: "g"}), error_header="错误")
    sheet = load_workbook(io.BytesIO(report)).active
    cells = {cell.coordinate: cell for row in sheet.iter_rows() for cell in row}
    assert (cells["B2"].value, cells["B2"].data_type) == ("=1+2", "s")  # text, not a formula
    assert (cells["C3"].value, cells["C3"].data_type) == (-4, "n")
    assert cells["A1"].font.bold
    assert read(report, "r.xlsx").rows == [
        ["A", "=1+2", 3.0, "e"],
        ["B", "-x", -4.0, "f"],
        ["C", "@a", 0.0, "g"],
    ]


def test_a_report_uploaded_again_gets_one_error_column():
    table = read("名称,手机\n甲,1\n乙,2\n".encode())
    report = write_error_report(table, failed(table, {2: "第一次"}), error_header="错误")
    again = read(report)
    second = write_error_report(again, failed(again, {2: "第二次"}), error_header="错误")
    assert read(second).headers == ["名称", "手机", "错误"]
    assert read(second).rows == [["甲", "1", "第二次"]]


def test_a_report_pads_and_cuts_rows_to_the_header():
    table = read(b"a,b\n1,2\n")
    report = write_error_report(
        table, [(2, ["1"], "short"), (3, ["1", "2", "3"], "long")], error_header="error"
    )
    assert read(report).rows == [["1", "", "short"], ["1", "2", "long"]]
