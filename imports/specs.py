"""What can be imported, one `ImportSpec` per record type.

A spec names what the engine (imports/services/engine.py) cannot derive from the record
type's model and its registered coercers: which standard fields a column may set (the
rest are kept by the system: created, last activity, status...), which field is the
owner, which fields a duplicate may be matched on, the header synonyms people use, and
how a row is written — the record type's own services, so an imported record is the one
the form would have made, with its history and events. A later app registers its type
with `register_import_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.models import Activity, Contact, Customer
from pipelines.models import Deal, Lead

# Header words people use for a field, besides its Chinese and English labels and its
# key; compared after crm.fields.coerce.match_key (case, width and spaces folded).
COMMON_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "姓名", "客户名称", "客户", "公司", "公司名称", "企业名称", "Company", "Name"),
    "phone": (
        "电话",
        "联系电话",
        "手机",
        "手机号",
        "手机号码",
        "座机",
        "Phone",
        "Phone Number",
        "Tel",
        "Telephone",
        "Mobile",
    ),
    "mobile": ("手机", "手机号", "手机号码", "移动电话", "Mobile", "Cell", "Cell Phone"),
    "email": ("邮箱", "电子邮件", "邮件", "E-mail", "Email Address", "Mail"),
    "address": ("地址", "联系地址", "公司地址", "Address"),
    "website": ("网站", "网址", "官网", "Website", "URL", "Web"),
    "owner": ("负责人", "销售", "业务员", "客户经理", "所属销售", "Owner", "Sales", "Sales Rep"),
    "tags": ("标签", "Tags", "Labels"),
    "source": ("来源", "客户来源", "线索来源", "Source", "Lead Source"),
    "level": ("级别", "客户级别", "客户等级", "等级", "Level", "Grade"),
    "industry": ("行业", "所属行业", "Industry"),
    "type": ("类型", "客户类型", "Type"),
    "wechat": ("微信", "微信号", "WeChat", "WeChat ID"),
    "title": ("职位", "职务", "Job Title", "Position"),
    "birthday": ("生日", "出生日期", "Birthday", "Date of Birth"),
    "customer": ("客户", "客户名称", "所属客户", "公司", "Customer", "Account", "Company"),
    "contact": ("联系人", "Contact"),
    "person_name": ("姓名", "联系人", "联系人姓名", "Name", "Contact Name"),
    "company_name": ("公司", "公司名称", "单位", "Company", "Company Name"),
    "amount": ("金额", "商机金额", "合同金额", "预计金额", "Amount", "Value", "Deal Value"),
    "expected_close_date": ("预计成交日期", "预计成交", "Close Date", "Expected Close"),
    "probability": ("赢率", "成交概率", "Probability", "Win Probability"),
    "pipeline": ("销售流程", "流程", "Pipeline"),
    "stage": ("阶段", "销售阶段", "线索状态", "商机阶段", "Stage", "Status"),
    "notes": ("备注", "说明", "需求", "需求描述", "Notes", "Remarks", "Comment"),
    "content": ("内容", "跟进内容", "跟进记录", "记录", "Content", "Notes", "Details"),
    "occurred_at": ("时间", "跟进时间", "日期", "跟进日期", "Date", "Time", "When"),
    "kind": ("方式", "跟进方式", "类型", "Type", "Kind"),
    "author": ("跟进人", "记录人", "负责人", "Author", "By"),
    "is_primary": ("主联系人", "首要联系人", "Primary"),
    "do_not_contact": ("勿扰", "请勿联系", "Do Not Contact"),
}


@dataclass(frozen=True)
class ImportSpec:
    record_type: str
    model: type[models.Model]
    label: Any  # the type's name in the importer's words ("客户")
    # Standard fields a column may set, in the mapping page's order.
    fields: tuple[str, ...]
    # The owner field, set by the import's owner choice when no column gives it.
    owner_field: str | None = "owner"
    # Whether records may have no owner (the public pool) on import.
    pool: bool = False
    # Fields a duplicate may be matched on (unique custom fields are added).
    duplicate_keys: tuple[str, ...] = ()
    # Duplicates are matched among the records of the row's customer (a contact, a
    # deal), not across the company.
    duplicate_within: str | None = None
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The list page's URL name (a link back from the import and to it).
    list_url: str = ""
    # New records go in with bulk inserts that write what the create service would
    # (imports/services/writers.py); otherwise each row goes through the service.
    bulk_create: bool = False

    def synonyms_for(self, name: str) -> tuple[str, ...]:
        return self.synonyms.get(name, ()) + COMMON_SYNONYMS.get(name, ())


_specs: dict[str, ImportSpec] = {}


def register_import_spec(spec: ImportSpec) -> ImportSpec:
    _specs[spec.record_type] = spec
    return spec


def import_specs() -> list[ImportSpec]:
    return list(_specs.values())


def import_spec(record_type: str) -> ImportSpec:
    try:
        return _specs[record_type]
    except KeyError:
        raise LookupError(f"{record_type!r} cannot be imported") from None


register_import_spec(
    ImportSpec(
        record_type="customer",
        model=Customer,
        label=_("Customers"),
        fields=(
            "name",
            "type",
            "source",
            "level",
            "industry",
            "phone",
            "email",
            "address",
            "website",
            "owner",
            "tags",
        ),
        pool=True,
        duplicate_keys=("name", "phone", "email"),
        list_url="customers:list",
        bulk_create=True,
    )
)

register_import_spec(
    ImportSpec(
        record_type="contact",
        model=Contact,
        label=_("Contacts"),
        fields=(
            "customer",
            "name",
            "title",
            "mobile",
            "phone",
            "email",
            "wechat",
            "birthday",
            "is_primary",
            "do_not_contact",
        ),
        owner_field=None,
        duplicate_keys=("mobile", "email", "name"),
        duplicate_within="customer",
        synonyms={
            "name": ("联系人", "联系人姓名", "姓名", "Contact Name"),
            "phone": ("座机", "办公电话"),
        },
        list_url="contacts:list",
    )
)

register_import_spec(
    ImportSpec(
        record_type="lead",
        model=Lead,
        label=_("Leads"),
        fields=(
            "person_name",
            "company_name",
            "title",
            "phone",
            "email",
            "wechat",
            "source",
            "notes",
            "pipeline",
            "stage",
            "owner",
        ),
        pool=True,
        duplicate_keys=("phone", "email", "company_name"),
        list_url="leads:list",
    )
)

register_import_spec(
    ImportSpec(
        record_type="deal",
        model=Deal,
        label=_("Deals"),
        fields=(
            "title",
            "customer",
            "contact",
            "amount",
            "expected_close_date",
            "pipeline",
            "stage",
            "owner",
        ),
        duplicate_keys=("title",),
        duplicate_within="customer",
        synonyms={
            "title": ("商机", "商机名称", "项目", "项目名称", "Deal", "Deal Name", "Opportunity")
        },
        list_url="deals:list",
    )
)

register_import_spec(
    ImportSpec(
        record_type="activity",
        model=Activity,
        label=_("Follow-ups"),
        fields=("customer", "contact", "kind", "content", "occurred_at", "author"),
        owner_field="author",
        list_url="activities:list",
    )
)
