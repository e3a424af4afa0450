"""What a bulk action says when it is done: how many of the ticked rows it changed and,
when that is fewer than were ticked, why the rest were left as they were, counted per
reason ("3 records transferred to 王芳; 2 not transferred: not yours to edit").

An action counts its reasons before it calls its service (after it, the rows have
changed); `Tally` adds the rows no longer there or not visible, and whatever the reasons
do not explain (someone changed the rows meanwhile)."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from ..params import ids_param

NOT_VISIBLE = gettext_lazy("no longer there or not visible to you")
NOT_EDITABLE = gettext_lazy("not yours to edit")
CHANGED_MEANWHILE = gettext_lazy("changed by someone else meanwhile")


class Tally:
    """The rows a bulk action was asked to change and why some of them were not."""

    def __init__(self, request, queryset: QuerySet):
        self.picked = len(set(ids_param(request.POST, "selected")))
        self.visible = queryset.count()
        self.reasons: Counter[str] = Counter()
        self.add(NOT_VISIBLE, self.picked - self.visible)

    def add(self, reason, count: int) -> None:
        """`count` rows will not change, because of `reason` (a short phrase)."""
        if count > 0:
            self.reasons[str(reason)] += count

    def add_not_editable(self, queryset: QuerySet, editable: QuerySet, unowned=None) -> None:
        """Count the visible rows outside `editable`: those without an owner (the public
        pool, unassigned leads) for `unowned` when given, the others as not editable."""
        locked = queryset.exclude(pk__in=editable.values("pk"))
        pool = locked.filter(owner__isnull=True).count() if unowned else 0
        self.add(unowned, pool)
        self.add(NOT_EDITABLE, locked.count() - pool)

    def left_out(self, done: int) -> list[tuple[str, int]]:
        """(reason, count) for the rows not changed when `done` were."""
        left = self.picked - done
        if left <= 0:
            return []
        reasons = Counter(self.reasons)
        unexplained = left - sum(reasons.values())
        if unexplained > 0:
            reasons[str(CHANGED_MEANWHILE)] += unexplained
        return list(reasons.items())

    def message(self, done: int, *, done_text: str, not_done: str):
        """The message for the list: `done_text` alone when every ticked row changed;
        else a warning that adds `not_done` (a text with %(count)s, e.g. "%(count)s not
        transferred") and the reasons."""
        reasons = self.left_out(done)
        if not reasons:
            return done_text
        left = self.picked - done
        if len(reasons) == 1:
            why = reasons[0][0]
        else:
            why = pgettext("list separator", ", ").join(
                _("%(reason)s (%(count)s)") % {"reason": reason, "count": count}
                for reason, count in reasons
            )
        text = _("%(done)s; %(not_done)s: %(reasons)s") % {
            "done": done_text.rstrip(".。"),
            "not_done": not_done % {"count": left},
            "reasons": why,
        }
        return messages.WARNING, text
