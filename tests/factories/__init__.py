"""Test factories, one module per app (accounts, automation, crm, pipelines, and the
test-only testapp); `from tests.factories import CustomerFactory` finds any of them."""

from .accounts import (
    PASSWORD,
    DepartmentFactory,
    RoleFactory,
    SecurityNoticeFactory,
    UserFactory,
)
from .automation import EmailTemplateFactory, deliver_events, make_rule, run_rule
from .crm import (
    CRM_RECORD_TYPES,
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    CustomFieldFactory,
    DictionaryFactory,
    DictionaryItemFactory,
    SavedViewFactory,
    TagFactory,
    TaskFactory,
    crm_permissions,
    custom_field,
    dictionary,
    give_crm_roles,
    item,
)
from .pipelines import DealFactory, LeadFactory, PipelineFactory, StageFactory, stage
from .testapp import NoteFactory, PooledNoteFactory

__all__ = [
    "CRM_RECORD_TYPES",
    "PASSWORD",
    "ActivityFactory",
    "ContactFactory",
    "CustomFieldFactory",
    "CustomerFactory",
    "DealFactory",
    "DepartmentFactory",
    "DictionaryFactory",
    "DictionaryItemFactory",
    "EmailTemplateFactory",
    "LeadFactory",
    "NoteFactory",
    "PipelineFactory",
    "PooledNoteFactory",
    "RoleFactory",
    "SavedViewFactory",
    "SecurityNoticeFactory",
    "StageFactory",
    "TagFactory",
    "TaskFactory",
    "UserFactory",
    "crm_permissions",
    "custom_field",
    "deliver_events",
    "dictionary",
    "give_crm_roles",
    "item",
    "make_rule",
    "run_rule",
    "stage",
]
