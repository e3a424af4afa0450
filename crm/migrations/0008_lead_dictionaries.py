"""Lead sources and lost reasons (leads and deals use them; DESIGN: the seed has no vague
"其他" reason, so reports can say why business is lost)."""

from django.db import migrations

DEFAULTS = [
    (
        "lead_source",
        "线索来源",
        [
            ("website_form", "官网表单", "Website form", "blue"),
            ("phone_in", "来电咨询", "Inbound call", "green"),
            ("exhibition", "展会", "Trade show", "purple"),
            ("referral", "客户转介绍", "Referral", "lime"),
            ("online_ad", "线上广告", "Online ad", "pink"),
            ("wechat", "微信公众号", "WeChat official account", "teal"),
            ("cold_call", "电话营销", "Cold call", "orange"),
        ],
    ),
    (
        "lost_reason",
        "输单原因",
        [
            ("price", "价格过高", "Price too high", "red"),
            ("competitor", "选择了竞争对手", "Chose a competitor", "orange"),
            ("no_budget", "没有预算", "No budget", "yellow"),
            ("no_need", "没有实际需求", "No real need", "secondary"),
            ("no_response", "多次联系无回应", "No response after several attempts", "secondary"),
            ("timing", "采购计划推迟", "Purchase postponed", "cyan"),
            ("product_fit", "产品不满足需求", "Product does not fit", "purple"),
            ("invalid", "无效信息（空号、错号）", "Invalid contact details", "dark"),
        ],
    ),
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
                defaults={
                    "label": label,
                    "label_en": label_en,
                    "color": color,
                    "order": order * 10,
                },
            )


class Migration(migrations.Migration):
    dependencies = [("crm", "0007_custom_fields_config_log")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
