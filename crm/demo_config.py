"""The demo company's configuration: custom fields a Chinese B2B seller uses and the
field permissions of the demo roles. Idempotent: keyed by dictionary code, field key and
role name; an admin's later edits to labels or rules are left alone."""

from __future__ import annotations

import random
from collections.abc import Callable

from accounts.models import FieldAccess, Role

from .models import Customer, CustomField, Dictionary, DictionaryItem, FieldType

INTENT = (
    "cooperation_intent",
    "合作意向",
    [
        ("strong", "强烈", "Strong", "green"),
        ("medium", "一般", "Medium", "blue"),
        ("watching", "观望", "Watching", "yellow"),
        ("none", "暂无意向", "None yet", "secondary"),
    ],
)

CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"

FIELDS = [
    {
        "record_type": "customer",
        "key": "credit_code",
        "label": "统一社会信用代码",
        "label_en": "Unified social credit code",
        "field_type": FieldType.TEXT,
        "unique": True,
        "max_length": 18,
        "pattern": "[0-9A-HJ-NPQRTUWXY]{18}",
        "pattern_message": "统一社会信用代码为 18 位数字或大写字母（不含 I、O、Z、S、V）",
        "pattern_message_en": "18 digits or capital letters (no I, O, Z, S or V)",
        "help_text": "营业执照上的 18 位代码，每家企业唯一。",
        "help_text_en": "The 18-character code on the business licence; unique per company.",
        "section": "企业信息",
        "order": 10,
    },
    {
        "record_type": "customer",
        "key": "annual_revenue",
        "label": "年营业额",
        "label_en": "Annual revenue",
        "field_type": FieldType.MONEY,
        "min_value": 0,
        "section": "企业信息",
        "order": 20,
        "show_in_list": True,
        "filterable": True,
    },
    {
        "record_type": "customer",
        "key": "staff_count",
        "label": "员工人数",
        "label_en": "Employees",
        "field_type": FieldType.INTEGER,
        "min_value": 1,
        "max_value": 1000000,
        "section": "企业信息",
        "order": 30,
        "filterable": True,
    },
    {
        "record_type": "customer",
        "key": "cooperation_intent",
        "label": "合作意向",
        "label_en": "Cooperation intent",
        "field_type": FieldType.CHOICE,
        "dictionary": "cooperation_intent",
        "default": "medium",
        "section": "商务信息",
        "order": 40,
        "show_in_list": True,
        "filterable": True,
    },
    {
        "record_type": "customer",
        "key": "commission_rate",
        "label": "佣金比例（%）",
        "label_en": "Commission rate (%)",
        "field_type": FieldType.DECIMAL,
        "min_value": 0,
        "max_value": 30,
        "help_text": "由销售经理确定，销售代表只读，客服不可见。",
        "help_text_en": "Set by a sales manager; read-only for reps, hidden from service.",
        "section": "商务信息",
        "order": 50,
    },
    {
        "record_type": "contact",
        "key": "decision_maker",
        "label": "是否决策人",
        "label_en": "Decision maker",
        "field_type": FieldType.BOOLEAN,
        "order": 10,
        "filterable": True,
    },
]

# Role name -> record type -> field -> access.
FIELD_PERMISSIONS = {
    "销售代表": {"customer": {"cf_commission_rate": FieldAccess.READONLY}},
    "客服": {
        "customer": {
            "cf_commission_rate": FieldAccess.HIDDEN,
            "cf_annual_revenue": FieldAccess.HIDDEN,
        }
    },
}


def seed_configuration() -> None:
    code, name, items = INTENT
    dictionary, _ = Dictionary.objects.get_or_create(code=code, defaults={"name": name})
    for order, (item_code, label, label_en, color) in enumerate(items, start=1):
        DictionaryItem.objects.get_or_create(
            dictionary=dictionary,
            code=item_code,
            defaults={"label": label, "label_en": label_en, "color": color, "order": order * 10},
        )
    for spec in FIELDS:
        values = dict(spec)
        if "dictionary" in values:
            values["dictionary"] = Dictionary.objects.get(code=values["dictionary"])
        record_type, key = values.pop("record_type"), values.pop("key")
        if not CustomField.objects.filter(record_type=record_type, key=key).exists():
            field = CustomField(record_type=record_type, key=key, **values)
            field.full_clean()
            field.save()
    for role_name, by_type in FIELD_PERMISSIONS.items():
        role = Role.objects.filter(name=role_name).first()
        if role is None:
            continue
        permissions = {rt: dict(levels) for rt, levels in (role.field_permissions or {}).items()}
        for record_type, levels in by_type.items():
            for field_name, level in levels.items():
                permissions.setdefault(record_type, {}).setdefault(field_name, str(level))
        if permissions != role.field_permissions:
            role.field_permissions = permissions
            role.save(update_fields=["field_permissions"])


def demo_custom_values(customer: Customer) -> dict:
    """Custom values of a demo company, derived from its name (same name, same values;
    the demo's main random sequence is left alone)."""
    if customer.type is None or customer.type.code != "company":
        return {"cooperation_intent": "medium"}
    rng = random.Random(customer.name)
    staff = rng.choice([12, 25, 40, 60, 85, 120, 180, 260, 400, 750, 1200, 3500])
    revenue = staff * rng.randint(30, 160) * 10000
    code = "91" + "".join(rng.choice("0123456789") for _ in range(6))
    code += "".join(rng.choice(CREDIT_CODE_CHARS) for _ in range(10))
    values = {
        "credit_code": code,
        "annual_revenue": f"{revenue}.00",
        "staff_count": staff,
        "cooperation_intent": rng.choice(["strong", "medium", "medium", "watching", "none"]),
    }
    if rng.random() < 0.4:
        values["commission_rate"] = rng.choice(["3", "5", "8", "10"])
    return values


# Higher apps (pipelines) add their demo records to `seed_demo` without crm importing
# them: each seeder runs after the demo customers exist and returns a line to print.
_demo_seeders: list[Callable[[], str]] = []


def register_demo_seeder(seeder: Callable[[], str]) -> None:
    if seeder not in _demo_seeders:
        _demo_seeders.append(seeder)


def demo_seeders() -> list[Callable[[], str]]:
    return list(_demo_seeders)
