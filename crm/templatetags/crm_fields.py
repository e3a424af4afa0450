"""Custom field values on detail pages, as the user may see them."""

from django import template

from accounts.models import User

from ..fields import schema, types
from ..filters import dictionary_items
from ..models import DictionaryItem, FieldType

register = template.Library()


@register.simple_tag(takes_context=True)
def custom_sections(context, record, record_type: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(section, [(label, text)])] of the active custom fields the user may see."""
    request = context.get("request")
    user = getattr(request, "user", None)
    specs = schema.custom_specs(user, record_type)
    if not specs:
        return []
    custom = record.custom or {}
    items = {}
    if any(s.custom.dictionary_id for s in specs):
        # The request's one load of all dictionary items (the page's other pickers use it).
        loaded = dictionary_items(request).values() if request else DictionaryItem.objects.all()
        items = {(i.dictionary_id, i.code): i for i in loaded}
    user_ids = {
        custom.get(s.custom.key)
        for s in specs
        if s.custom.field_type == FieldType.USER and isinstance(custom.get(s.custom.key), int)
    }
    users = {u.pk: u for u in User.objects.filter(pk__in=user_ids)} if user_ids else {}
    sections: dict[str, list[tuple[str, str]]] = {}
    for spec in specs:
        cf = spec.custom
        text = types.display_value(cf, custom.get(cf.key), items=items, users=users)
        sections.setdefault(cf.section or "", []).append((spec.label, text))
    return list(sections.items())
