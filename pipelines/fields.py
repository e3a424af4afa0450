"""Leads and deals have custom fields and field permissions like customers (crm.fields)."""

from crm.fields import schema

schema.register_record_type(
    "lead",
    "pipelines",
    "lead",
    ["person_name", "company_name", "title", "phone", "email", "wechat", "source", "notes"],
)
schema.register_record_type(
    "deal",
    "pipelines",
    "deal",
    ["amount", "expected_close_date", "contact", "lost_reason"],
)
