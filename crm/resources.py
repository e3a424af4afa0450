"""Dictionary items from a spreadsheet and back, in Django admin (accounts.sheets).

One row per item, keyed by dictionary (its code) and item code: an existing pair updates
that item, a new one adds an item to the dictionary. Nothing is ever deleted: an item
missing from the file stays as it is. The model's rules apply (full_clean: the code a
slug, unique within its dictionary, lengths), and the admin's: an item still in use is
deactivated only on the admin's pages, which show where it is used first.

Imported items reach the configuration log (crm.config.log) like any save: its signals
record each one, as done by the admin who confirmed the import, from "admin import".
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.fields import Field

from accounts.sheets import (
    Column,
    LookupWidget,
    SheetResource,
    TextWidget,
    YesNoWidget,
    index_by,
)

from .fields import coerce, impact
from .models import Dictionary, DictionaryItem

ORDER_RANGE = coerce.INTEGER_RANGES["PositiveIntegerField"]


class DictionaryWidget(LookupWidget):
    """A dictionary by its code ("customer_source") or its name ("客户来源")."""

    def candidates(self):
        dictionaries = list(Dictionary.objects.all())
        by_code = index_by(dictionaries, lambda d: d.code)
        by_name = index_by(dictionaries, lambda d: d.name)
        return {**by_name, **by_code}  # a code wins over another dictionary's name

    def not_found(self, text: str) -> str:
        return gettext("No dictionary “%(value)s”: write its code.") % {"value": text}

    def ambiguous(self, text: str, found) -> str:
        return gettext("More than one dictionary is called “%(value)s”: write its code.") % {
            "value": text
        }

    def label(self, obj) -> str:
        return obj.code


class OrderWidget(TextWidget):
    """A whole number from 0; blank keeps the item's order (0 for a new item). Read by
    crm.fields.coerce, so "高" is an error naming it, not InvalidOperation."""

    def clean(self, value, row=None, **kwargs):
        try:
            return coerce.to_integer(value, min_value=ORDER_RANGE[0], max_value=ORDER_RANGE[1])
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class DictionaryItemResource(SheetResource):
    dictionary = Field(attribute="dictionary", widget=DictionaryWidget())
    code = Field(attribute="code", widget=TextWidget())
    label = Field(attribute="label", widget=TextWidget())
    label_en = Field(attribute="label_en", widget=TextWidget())
    order = Field(attribute="order", widget=OrderWidget(), saves_null_values=False)
    color = Field(attribute="color", widget=TextWidget())
    is_active = Field(attribute="is_active", widget=YesNoWidget(), saves_null_values=False)

    columns = (
        Column(
            "dictionary",
            "字典",
            "dictionary",
            ("字典编码", "数据字典"),
            _("its code, e.g. customer_source"),
        ),
        Column(
            "code",
            "编码",
            "code",
            ("代码", "选项编码"),
            _("letters, digits, - and _; fixed once saved"),
        ),
        Column("label", "名称", "label", ("中文名称", "标签", "选项"), _("the Chinese label")),
        Column("label_en", "英文名称", "label_en", ("english label", "英文")),
        Column("order", "排序", "order", ("顺序", "序号"), _("a whole number; blank keeps it")),
        Column("color", "颜色", "color", ("colour",)),
        Column("is_active", "启用", "active", ("是否启用", "有效"), _("是 or 否; blank keeps it")),
    )

    class Meta:
        model = DictionaryItem
        fields = ("dictionary", "code", "label", "label_en", "order", "color", "is_active")
        import_id_fields = ("dictionary", "code")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def after_init_instance(self, instance, new, row, **kwargs):
        instance._sheet_was_active = not new and instance.is_active

    def check_row(self, instance, row, errors) -> None:
        """The admin's rule: an item in use is deactivated where its usages are shown."""
        if not (instance.pk and instance._sheet_was_active and instance.is_active is False):
            return
        stored = DictionaryItem.objects.select_related("dictionary").get(pk=instance.pk)
        groups = impact.usages_of_item(stored)
        if groups:
            message = gettext(
                "“%(item)s” is still used (%(usages)s): deactivate it with the dictionary "
                "items list's “Deactivate” action, which shows where it is used first."
            ) % {"item": stored.label, "usages": "；".join(impact.describe(groups))}
            errors.setdefault("is_active", []).append(ValidationError(message, code="in_use"))


__all__ = ["DictionaryItemResource"]
