"""The dictionaries every installation starts with; admins rename, reorder and add."""

from django.db import migrations

# code, name, [(item code, 中文, English, colour)]
DEFAULTS = [
    ("customer_type", "客户类型", [
        ("company", "企业", "Company", "blue"),
        ("individual", "个人", "Individual", "teal"),
    ]),
    ("customer_source", "客户来源", [
        ("website", "官网咨询", "Website", "blue"),
        ("referral", "客户转介绍", "Referral", "green"),
        ("exhibition", "展会", "Trade show", "purple"),
        ("cold_call", "电话营销", "Cold call", "orange"),
        ("online_ad", "线上广告", "Online ad", "pink"),
        ("partner", "合作伙伴", "Partner", "cyan"),
        ("existing", "老客户", "Existing customer", "lime"),
    ]),
    ("customer_level", "客户级别", [
        ("a", "A 重点客户", "A – key account", "red"),
        ("b", "B 普通客户", "B – regular", "orange"),
        ("c", "C 一般客户", "C – occasional", "yellow"),
        ("d", "D 潜在客户", "D – prospect", "secondary"),
    ]),
    ("industry", "行业", [
        ("manufacturing", "制造业", "Manufacturing", ""),
        ("internet", "互联网", "Internet", ""),
        ("retail", "零售批发", "Retail and wholesale", ""),
        ("education", "教育培训", "Education", ""),
        ("healthcare", "医疗健康", "Healthcare", ""),
        ("finance", "金融", "Finance", ""),
        ("real_estate", "房地产", "Real estate", ""),
        ("logistics", "物流运输", "Logistics", ""),
        ("government", "政府及公共事业", "Government and utilities", ""),
        ("food", "餐饮食品", "Food and catering", ""),
    ]),
    ("activity_kind", "跟进方式", [
        ("call", "电话", "Call", "blue"),
        ("visit", "拜访", "Visit", "green"),
        ("meeting", "会议", "Meeting", "purple"),
        ("email", "邮件", "Email", "orange"),
        ("wechat", "微信", "WeChat", "teal"),
        ("note", "备注", "Note", "secondary"),
    ]),
]


def create(apps, schema_editor):
    Dictionary = apps.get_model("crm", "Dictionary")
    DictionaryItem = apps.get_model("crm", "DictionaryItem")
    for code, name, items in DEFAULTS:
        dictionary, _ = Dictionary.objects.get_or_create(code=code, defaults={"name": name})
        for order, (item_code, label, label_en, color) in enumerate(items, start=1):
            DictionaryItem.objects.get_or_create(
                dictionary=dictionary,
                code=item_code,
                defaults={"label": label, "label_en": label_en, "color": color, "order": order * 10},
            )


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
