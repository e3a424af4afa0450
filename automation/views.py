"""The notifications page (the bell's list): one's own notifications, newest first, read
and unread, each opening its record; and the daily digest setting.

A notification is its recipient's alone: anyone else's id is a 404, like an id that does
not exist. Its record is linked only while the reader may still see it (a record since
transferred away keeps its notification, without the link)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from crm.params import page_param, parse_id

from . import notifications
from .models import DIGEST_HOURS, Notification, NotificationSettings
from .records import TYPES

PAGE_SIZE = 25
UNREAD = "unread"


class DigestForm(forms.ModelForm):
    """The digest's switch and its hour (the site's time zone). A post without an hour
    keeps the person's hour; anything not in the list is an error on the field."""

    digest_hour = forms.TypedChoiceField(
        label=gettext_lazy("Send at"),
        choices=DIGEST_HOURS,
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": gettext_lazy("Choose an hour from 00:00 to 23:00.")},
    )

    class Meta:
        model = NotificationSettings
        fields = ["daily_digest", "digest_hour"]

    def clean_digest_hour(self) -> int:
        hour = self.cleaned_data["digest_hour"]
        return self.instance.digest_hour if hour is None else hour


def _mine(request, notification_id) -> Notification:
    """The signed-in person's notification with this id; 404 for anything else."""
    pk = parse_id(notification_id)
    found = (
        Notification.objects.filter(user=request.user, pk=pk).first() if pk is not None else None
    )
    if found is None:
        raise Http404
    return found


def record_links(user, rows: list[Notification]) -> dict[int, str]:
    """Each notification's record link, for the records the user may still see: one
    query per record type among the rows."""
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.record_type in TYPES and row.record_id is not None:
            wanted.setdefault(row.record_type, set()).add(row.record_id)
    visible: set[tuple[str, int]] = set()
    for key, ids in wanted.items():
        model = TYPES[key].model
        found = model.objects.visible_to(user).filter(pk__in=ids).values_list("pk", flat=True)
        visible.update((key, pk) for pk in found)
    links = {}
    for row in rows:
        if (row.record_type, row.record_id) in visible:
            url = notifications.link(row)
            if url:
                links[row.pk] = url
    return links


def _back_target(request) -> str:
    """The list where the button was (its tab and page), never elsewhere."""
    target = request.POST.get("next") or ""
    home = reverse("automation:notifications")
    if target.startswith(home) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return home


def _back(request) -> HttpResponseRedirect:
    return HttpResponseRedirect(_back_target(request))


def _page(request, params: QueryDict, here: str, digest_form: DigestForm):
    """The list (its tab and page from `params`) with the digest form; `here` is where
    its buttons come back to."""
    user = request.user
    show = UNREAD if params.get("show") == UNREAD else ""
    rows = notifications.for_user(user).select_related("rule").order_by("-created_at", "-id")
    if show:
        rows = rows.filter(read_at__isnull=True)
    page = Paginator(rows, PAGE_SIZE).get_page(page_param(params))
    items = list(page.object_list)
    links = record_links(user, items)
    for item in items:
        item.record_url = reverse("automation:open", args=[item.pk]) if item.pk in links else ""
    return render(
        request,
        "automation/notifications.html",
        {
            "page_obj": page,
            "items": items,
            "show": show,
            "query": f"show={show}" if show else "",
            "here": here,
            "list_url": reverse("automation:notifications"),
            "digest_form": digest_form,
            "has_email": bool(user.email),
            "time_zone": settings.TIME_ZONE,
        },
    )


@login_required
@require_GET
def notification_list(request):
    user = request.user
    prefs = NotificationSettings.objects.filter(user=user).first()
    form = DigestForm(instance=prefs or NotificationSettings(user=user))
    return _page(request, request.GET, request.get_full_path(), form)


@login_required
@require_GET
def open_notification(request, notification_id):
    """Follow a notification to its record, marking it read. A record the reader may no
    longer see is not opened: back to the list, saying so."""
    notification = _mine(request, notification_id)
    notifications.mark_read(request.user, [notification.pk])
    url = record_links(request.user, [notification]).get(notification.pk)
    if url:
        return HttpResponseRedirect(url)
    if notification.record_type:
        messages.warning(request, _("The record of this notification is no longer yours to see."))
    return redirect("automation:notifications")


@login_required
@require_POST
def mark_read(request, notification_id):
    notifications.mark_read(request.user, [_mine(request, notification_id).pk])
    return _back(request)


@login_required
@require_POST
def mark_unread(request, notification_id):
    notifications.mark_unread(request.user, [_mine(request, notification_id).pk])
    return _back(request)


@login_required
@require_POST
def mark_all_read(request):
    count = notifications.mark_read(request.user)
    if count:
        messages.success(request, _("All notifications are marked read."))
    return _back(request)


@login_required
@require_POST
def digest_settings(request):
    prefs = notifications.settings_for(request.user)
    form = DigestForm(request.POST, instance=prefs)
    if not form.is_valid():
        # The page again, where the form was, with the error on the hour; nothing saved.
        here = _back_target(request)
        return _page(request, QueryDict(urlsplit(here).query), here, form)
    form.save()
    if prefs.daily_digest and not request.user.email:
        messages.warning(
            request,
            _(
                "Saved, but the daily digest needs an email address and your account has "
                "none: ask an administrator to add yours."
            ),
        )
    elif prefs.daily_digest:
        messages.success(
            request,
            _("Saved: you will get a daily email of unread notifications at %(hour)s.")
            % {"hour": f"{prefs.digest_hour:02d}:00"},
        )
    else:
        messages.success(request, _("Saved: no daily email."))
    return _back(request)
