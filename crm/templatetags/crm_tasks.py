"""The dashboard's task items, built in Python (crm.views.rows.TaskItems)."""

from django import template
from django.middleware.csrf import get_token
from django.utils.safestring import mark_safe

from ..views.rows import TaskItems

register = template.Library()


def _maker(context, next_url: str) -> TaskItems:
    """One TaskItems per page and `next_url`: the labels, URLs and CSRF field once."""
    makers = context.render_context.setdefault("task_items", {})
    maker = makers.get(next_url)
    if maker is None:
        request = context.get("request")
        maker = makers[next_url] = TaskItems(
            user=request.user,
            can_change=bool(context.get("can_change_tasks")),
            next_url=next_url,
            csrf_token=get_token(request),
        )
    return maker


@register.simple_tag(takes_context=True)
def task_items(context, tasks, next_url="/") -> str:
    """{% task_items tasks "/" %}: each task as an item of the dashboard's cards, with
    the done/reopen button where `can_change_tasks`."""
    maker = _maker(context, next_url)
    return mark_safe("".join(maker.item(task) for task in tasks))  # noqa: S308 - format_html


@register.simple_tag(takes_context=True)
def task_item(context, task, next_url="/") -> str:
    """{% task_item task next %}: one item (the one a tick swaps in)."""
    return _maker(context, next_url).item(task)
