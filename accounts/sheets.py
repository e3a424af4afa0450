"""Spreadsheet import and export in Django admin, through django-import-export.

What this project adds to it, for every admin that keeps configuration importable from
a sheet (users here; dictionary items in crm):

- headers in Chinese or English, whatever their case, width or spacing ("用户名",
  "Username", "ＵＳＥＲＮＡＭＥ"); an export writes them in the admin's language;
- cells read as people type them: text trimmed, a phone that Excel holds as a number read
  as its digits, 是/否 for yes/no; a bad value is an error on its row that names it,
  never a traceback;
- blank rows skipped; the same key (a username) twice in one file refused; columns that
  must never be imported (a password) refuse the file;
- CSV in UTF-8 (with or without a BOM) or GBK/GB18030, as Excel saves it in China
  (django-import-export reads one fixed encoding, `ImportMixin.from_encoding`, and has
  no setting or form field to choose another); exports in UTF-8 with a BOM, which Excel
  needs to read Chinese;
- importing needs the add and change permissions and exporting the view permission
  (django-import-export lets every staff user do both unless IMPORT_EXPORT_*_PERMISSION_CODE
  is set);
- a confirmed import whose rows no longer all validate imports nothing (django-import-export
  would import the valid rows and drop the others with a success message);
- the admin's history says what each row changed, as for an edit on the change page.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.core.files.base import ContentFile
from django.core.validators import ProhibitNullCharactersValidator
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_str
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import resources, widgets
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats
from import_export.forms import ConfirmImportForm, SelectableFieldsExportForm
from import_export.results import RowResult

from .phones import normalize_phone

# --- Headers ---------------------------------------------------------------------------


def match_key(text: Any) -> str:
    """How two headers or names are compared: compatibility-normalised (full-width as
    half-width), case-folded, spaces collapsed. For matching only, never stored."""
    return " ".join(unicodedata.normalize("NFKC", force_str(text)).casefold().split())


def header_key(text: Any) -> str:
    """A header as matched: like match_key, and "is_active", "is active" and "Is-Active"
    are one header."""
    return re.sub(r"[\s_\-]+", "", match_key(text or ""))


@dataclass(frozen=True)
class Column:
    """A column of a sheet: the resource field it fills, its header in Chinese and in
    English (both accepted, the admin's language written), other headers people use,
    and what it holds (shown on the import page)."""

    field: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()
    help: Any = ""

    def header(self) -> str:
        language = translation.get_language() or ""
        return self.zh if language.lower().startswith("zh") else self.en

    def accepted(self) -> list[str]:
        return [self.zh, self.en, self.field, *self.aliases]


# --- Cells -----------------------------------------------------------------------------

EXCEL_DIGITS = 15  # what Excel keeps of a number; more digits were rounded away
_FLOAT_TEXT = re.compile(r"\+?[0-9]{5,15}\.0+", re.ASCII)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: Any) -> str:
    """A cell as text: trimmed; a number as its digits (13800138000.0 → "13800138000");
    a date in ISO form. A NUL character is refused, as Django's form fields do."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"  # as Excel shows a logical cell
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float | Decimal):
        whole = value.is_finite() and value == value.to_integral_value()
        if isinstance(value, float):
            whole = value.is_integer()
        if whole:
            if abs(value) >= 10**EXCEL_DIGITS:
                raise ValueError(
                    gettext(
                        "“%(value)s” has more digits than Excel keeps: format the column "
                        "as text and enter it again."
                    )
                    % {"value": value}
                )
            text = str(int(value))
        else:
            text = str(value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = force_str(value)
    text = text.strip()
    try:
        ProhibitNullCharactersValidator()(text)
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None
    return text


class TextWidget(widgets.Widget):
    """Text as typed, trimmed; "" for a blank cell (the field is cleared)."""

    def clean(self, value, row=None, **kwargs):
        return cell_text(value)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else force_str(value)


class PhoneWidget(TextWidget):
    """A phone number in E.164 (accounts.phones: CN by default); "" for none. Normalised
    here so that "138 0013 8000" on a user stored as +8613800138000 is no change."""

    def clean(self, value, row=None, **kwargs):
        text = cell_text(value)
        if _FLOAT_TEXT.fullmatch(text):
            text = text.split(".")[0]
        try:
            return normalize_phone(text)
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None


# The same words as crm.fields.coerce.to_bool, which accounts may not import.
YES = frozenset({"1", "true", "yes", "y", "是", "对", "有", "√", "✓", "✔", "on"})
NO = frozenset({"0", "false", "no", "n", "否", "不", "无", "×", "✗", "✘", "off"})


class YesNoWidget(widgets.Widget):
    """是/否, Y/N, true/false, 1/0, ✓/✗ and the like; None for a blank cell (with
    `saves_null_values=False` on the field, a blank cell keeps the current value).
    django-import-export's BooleanWidget reads anything else, "是" included, as False."""

    def clean(self, value, row=None, **kwargs):
        if is_blank(value):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float | Decimal) and value in (0, 1):
            return value == 1
        key = match_key(value)
        if key in YES:
            return True
        if key in NO:
            return False
        raise ValueError(
            gettext("“%(value)s” is not yes or no (write 是 or 否).")
            % {"value": force_str(value)[:40]}
        )

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return gettext("Yes") if value else gettext("No")


class LookupWidget(widgets.Widget):
    """A related object found by what people write for it (a name, a code), each
    compared by match_key; the candidates are read once per import."""

    def candidates(self) -> dict[str, list[Any]]:  # pragma: no cover - each widget says
        raise NotImplementedError

    def not_found(self, text: str) -> str:  # pragma: no cover
        raise NotImplementedError

    def label(self, obj) -> str:
        return force_str(obj)

    def _index(self) -> dict[str, list[Any]]:
        if getattr(self, "_cache", None) is None:
            self._cache = self.candidates()
        return self._cache

    def find(self, text: str):
        found = self._index().get(match_key(text), [])
        if not found:
            raise ValueError(self.not_found(text))
        if len(found) > 1:
            raise ValueError(self.ambiguous(text, found))
        return found[0]

    def ambiguous(self, text: str, found: list[Any]) -> str:
        return self.not_found(text)

    def clean(self, value, row=None, **kwargs):
        text = cell_text(value)
        if not text:
            return None
        return self.find(text)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else self.label(value)


def index_by(objects: Iterable[Any], *keys) -> dict[str, list[Any]]:
    """{match_key(key(obj)): [objects]} for each of `keys` (callables); an object is
    listed once per distinct key."""
    index: dict[str, list[Any]] = {}
    for obj in objects:
        seen = set()
        for key in keys:
            value = key(obj)
            if not value:
                continue
            k = match_key(value)
            if k in seen:
                continue
            seen.add(k)
            index.setdefault(k, []).append(obj)
    return index


# --- The resource ----------------------------------------------------------------------


class SheetResource(resources.ModelResource):
    """A ModelResource read from a sheet people made: see the module docstring.

    Subclasses list `columns` (one per declared field), `refused_headers` (columns that
    refuse the file, e.g. a password) and keep the model's own rules
    (`clean_model_instances = True` in their Meta)."""

    columns: ClassVar[tuple[Column, ...]] = ()
    refused_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._duplicate_of: dict[int, int] = {}
        for column in self.columns:
            self.fields[column.field].column_name = column.header()

    # Headers ------------------------------------------------------------------------

    def header_names(self) -> dict[str, str]:
        """{header_key(accepted header): this import's column name}."""
        names = {}
        for column in self.columns:
            for header in column.accepted():
                names[header_key(header)] = self.fields[column.field].column_name
        return names

    def before_import(self, dataset, **kwargs):
        """Headers as this resource names them; refuses a file with a refused column,
        two columns for one field or no key column. Trailing blank rows (a sheet's
        formatted but empty rows) are dropped."""
        names = self.header_names()
        refused = {header_key(h) for h in self.refused_headers}
        headers, seen, refused_found, doubled = [], {}, [], []
        for header in dataset.headers or []:
            key = header_key(header) if header is not None else ""
            if key and key in refused:
                refused_found.append(force_str(header))
            name = names.get(key) if key else None
            if name is None:
                headers.append(force_str(header) if header is not None else "")
                continue
            if name in seen:
                doubled.append(f"{seen[name]} / {force_str(header)}")
            seen[name] = force_str(header)
            headers.append(name)
        if refused_found:
            self._refuse(
                dataset,
                gettext(
                    "The file has columns that an import never sets: %(columns)s. "
                    "Remove them and upload the file again."
                )
                % {"columns": "、".join(refused_found)},
            )
        if doubled:
            self._refuse(
                dataset,
                gettext("Two columns in the file mean the same thing: %(columns)s.")
                % {"columns": "、".join(doubled)},
            )
        if dataset.headers:
            dataset.headers = headers
        missing = [
            self.fields[name].column_name
            for name in self.get_import_id_fields()
            if self.fields[name].column_name not in headers
        ]
        if missing:
            self._refuse(
                dataset,
                gettext("The file has no “%(columns)s” column; the first row holds the headers.")
                % {"columns": "、".join(missing)},
            )
        while len(dataset) and all(is_blank(v) for v in dataset[-1]):
            dataset.pop()
        self._find_duplicates(dataset)

    @staticmethod
    def _refuse(dataset, message: str) -> None:
        """Refuse the whole file: its rows are not read (their errors would only
        repeat this one) and the page shows `message`."""
        while len(dataset):
            dataset.pop()
        raise ValueError(message)

    def _find_duplicates(self, dataset) -> None:
        """Rows whose key a row above already has: importing them would silently
        overwrite that row."""
        columns = [self.fields[name].column_name for name in self.get_import_id_fields()]
        first: dict[tuple[str, ...], int] = {}
        self._duplicate_of = {}
        for number, values in enumerate(dataset.dict, 1):
            key = tuple(match_key(cell_text_or_raw(values.get(c))) for c in columns)
            if not any(key):
                continue
            if key in first:
                self._duplicate_of[number] = first[key]
            else:
                first[key] = number

    # Rows ---------------------------------------------------------------------------

    def get_instance(self, instance_loader, row):
        """A key that does not read (an unknown dictionary) is a new row here, and an
        error on that column when the row is read, not an exception."""
        try:
            return super().get_instance(instance_loader, row)
        except ValueError:
            return None

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, list] = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        first = self._duplicate_of.get(kwargs.get("row_number"))
        if first:
            key = self.fields[self.get_import_id_fields()[0]].attribute
            message = gettext("Row %(row)s has the same key; each may appear once.") % {
                "row": first
            }
            errors.setdefault(key, []).append(ValidationError(message, code="duplicate"))
        self.check_row(instance, row, errors)
        if errors:
            raise ValidationError(errors)

    def check_row(self, instance, row, errors: dict[str, list]) -> None:
        """More rules of the admin's form than the model's own (full_clean): add
        `errors[attribute]` entries. Runs after the row's cells are read."""

    def import_row(self, row, instance_loader, **kwargs):
        if all(is_blank(v) for v in row.values()):
            row_result = self.get_row_result_class()()
            row_result.import_type = RowResult.IMPORT_TYPE_SKIP
            return row_result
        row_result = super().import_row(row, instance_loader, **kwargs)
        if row_result.validation_error is not None:
            row_result.validation_error = self._by_header(row_result.validation_error)
        return row_result

    def _by_header(self, error: ValidationError) -> ValidationError:
        """The row's errors keyed by the column headers people see, not field names."""
        if not hasattr(error, "error_dict"):
            return error
        labels = {f.attribute: f.column_name for f in self.fields.values() if f.attribute}
        keyed: dict[str, list] = {}
        for name, errors in error.error_dict.items():
            if name == NON_FIELD_ERRORS:
                label = name
            elif name in labels:
                label = labels[name]
            else:
                try:
                    label = capfirst(self._meta.model._meta.get_field(name).verbose_name)
                except FieldDoesNotExist:
                    label = name
            keyed.setdefault(force_str(label), []).extend(errors)
        return ValidationError(keyed)


def cell_text_or_raw(value: Any) -> str:
    try:
        return cell_text(value)
    except ValueError:
        return force_str(value)


# --- The admin -------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """The text of an uploaded CSV: a BOM says its encoding; else UTF-8 if it reads as
    UTF-8 (a GBK file never does), else GB18030 (a superset of GBK, what Excel writes
    on Chinese Windows). Raises UnicodeDecodeError if neither reads."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


TMP_NAME = re.compile(r"tmp[a-z0-9_]{6,}", re.ASCII)


class SheetConfirmForm(ConfirmImportForm):
    """The confirm step's hidden fields, checked: a posted format or resource that is
    not one of the page's, or a file name that is not an upload still waiting, is a
    form error (django-import-export raised on them)."""

    def __init__(self, *args, format_count: int = 1, resource_count: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.format_count = format_count
        self.resource_count = resource_count

    def clean_import_file_name(self):
        name = super().clean_import_file_name()
        path = os.path.join(tempfile.gettempdir(), name)
        if not TMP_NAME.fullmatch(name) or not os.path.isfile(path):
            raise ValidationError(
                _("The uploaded file is no longer here: upload it again."), code="gone"
            )
        return name

    def clean_format(self):
        value = self.cleaned_data["format"]
        if not (value.isascii() and value.isdigit() and int(value) < self.format_count):
            raise ValidationError(_("Choose the file's format again."), code="format")
        return value

    def clean_resource(self):
        value = self.cleaned_data.get("resource") or ""
        if value and not (value.isascii() and value.isdigit() and int(value) < self.resource_count):
            raise ValidationError(_("Choose the file's format again."), code="resource")
        return value


class SheetExportForm(SelectableFieldsExportForm):
    """Export columns labelled by their headers ("部门"), not a title-cased field name."""

    def _get_field_label(self, resource, field_name: str) -> str:
        field = resource().fields.get(field_name)
        return capfirst(field.column_name) if field else field_name


class SheetAdminMixin(ImportExportMixin):
    """Import and export for a ModelAdmin, put before it in the bases: CSV and XLSX,
    the resource in `resource_classes`, `import_help` paragraphs on the import page."""

    formats = [base_formats.CSV, base_formats.XLSX]
    from_encoding = "utf-8-sig"  # what write_to_tmp_storage stores, whatever was uploaded
    to_encoding = "utf-8-sig"  # Excel reads a CSV without a BOM in the system's code page
    import_template_name = "admin/sheets/import.html"
    confirm_form_class = SheetConfirmForm
    export_form_class = SheetExportForm
    import_help: ClassVar[tuple[Any, ...]] = ()

    # Permissions --------------------------------------------------------------------

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    # Import -------------------------------------------------------------------------

    def get_import_context_data(self, **kwargs):
        context = super().get_import_context_data(**kwargs)
        resource_class = self.get_import_resource_classes(None)[0]
        context["sheet_help"] = self.import_help
        context["sheet_columns"] = [
            {
                "header": column.header(),
                "accepted": [h for h in dict.fromkeys(column.accepted()) if h != column.header()],
                "help": column.help,
            }
            for column in getattr(resource_class, "columns", ())
        ]
        return context

    def import_action(self, request, **kwargs):
        """The preview. An upload that cannot be confirmed is deleted at once:
        django-import-export removes its copy only on confirmation, and HR's sheet of
        names and phones would stay in the temporary folder."""
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        form = context.get("form")
        if context.get("confirm_form") is None and getattr(form, "cleaned_data", None):
            name = getattr(form.cleaned_data.get("import_file"), "tmp_storage_name", None)
            if name:
                with contextlib.suppress(OSError):
                    self.get_tmp_storage_class()(
                        name=name, **self.get_tmp_storage_class_kwargs()
                    ).remove()
        return response

    def write_to_tmp_storage(self, import_file, input_format):
        """A CSV is stored as UTF-8 whatever it was uploaded in (decode_text), so both
        steps read it with `from_encoding`."""
        if input_format.is_binary():
            return super().write_to_tmp_storage(import_file, input_format)
        data = b"".join(import_file.chunks())
        # Left as uploaded if it does not decode: reading it fails and the form says so.
        with contextlib.suppress(UnicodeDecodeError):
            data = decode_text(data).encode("utf-8")
        return super().write_to_tmp_storage(ContentFile(data), input_format)

    def get_confirm_form_kwargs(self, request, import_form=None):
        kwargs = super().get_confirm_form_kwargs(request, import_form)
        kwargs["format_count"] = len(self.get_import_formats())
        kwargs["resource_count"] = len(self.get_import_resource_classes(request))
        return kwargs

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # A confirmed import in which a row no longer validates imports nothing.
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            messages.error(
                request,
                gettext(
                    "Nothing was imported: the file no longer passes the checks it passed "
                    "in the preview. Upload it again to see why."
                ),
            )
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_import"))
        return super().process_result(result, request)

    def generate_log_entries(self, result, request):
        """History entries as an edit on the change page writes them: "Added." or
        "Changed <fields>.", each in the reader's language."""
        if self.get_skip_admin_log():
            return
        added = []
        changed: dict[tuple[str, ...], list] = {}
        fields = [f for f in self.model._meta.concrete_fields if not f.primary_key]
        for row in result:
            instance = getattr(row, "instance", None)
            if instance is None or instance.pk is None:
                continue
            if row.import_type == RowResult.IMPORT_TYPE_NEW:
                added.append(instance)
            elif row.import_type == RowResult.IMPORT_TYPE_UPDATE:
                original = getattr(row, "original", None)
                with translation.override(None):
                    names = tuple(
                        str(f.verbose_name)
                        for f in fields
                        if original is None
                        or f.value_from_object(original) != f.value_from_object(instance)
                    )
                if names:
                    changed.setdefault(names, []).append(instance)
        if added:
            LogEntry.objects.log_actions(
                request.user.pk, added, ADDITION, [{"added": {}}], single_object=len(added) == 1
            )
        for names, instances in changed.items():
            LogEntry.objects.log_actions(
                request.user.pk,
                instances,
                CHANGE,
                [{"changed": {"fields": list(names)}}],
                single_object=len(instances) == 1,
            )

    # Export -------------------------------------------------------------------------

    def get_valid_export_item_pks(self, request):
        """Rows a posted `export_items` may name: those of the admin's own list (the
        inherited method, deprecated, allows every row of the table)."""
        return self.get_queryset(request).values_list("pk", flat=True)

    def export_action(self, request):
        """A changelist filter that does not parse sends the admin back to the list,
        as the list itself does, instead of an error page."""
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:
            opts = self.model._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            return HttpResponseRedirect(f"{url}?{ERROR_FLAG}=1")


__all__ = [
    "Column",
    "LookupWidget",
    "PhoneWidget",
    "SheetAdminMixin",
    "SheetResource",
    "TextWidget",
    "YesNoWidget",
    "cell_text",
    "decode_text",
    "header_key",
    "index_by",
    "match_key",
]
