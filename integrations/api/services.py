"""Every write to API tokens: making one, revoking one, noting its use.

Who did it and when is on the row (`created_by`, `revoked_by`, `revoked_at`): a person
makes and revokes their own tokens on their tokens page; an admin may revoke anyone's
(Django admin) or make one from the shell (`manage.py create_api_token`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User

from . import tokens
from .models import ApiToken

log = logging.getLogger(__name__)

# How long a token's last use may be out of date: one write a minute at most per token,
# not one per request.
LAST_USED_EVERY = timedelta(minutes=1)
# Tokens a person may hold at once (unrevoked), so a script gone wrong cannot make
# thousands.
MAX_ACTIVE_TOKENS = 50
NAME_MAX = 100


def create_token(
    user: User, *, name: str, expires_in_days: int | None, by: User
) -> tuple[ApiToken, str]:
    """A new token for `user`, made by `by` (the user, or an admin from the shell).
    Returns the row and the full token: the only time it exists outside the request."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name.")})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": _("At most %(count)d characters.") % {"count": NAME_MAX}})
    if by.pk != user.pk and not by.is_superuser:
        raise PermissionDenied
    if not user.is_active:
        raise ValidationError(_("An inactive user cannot have API tokens."))
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValidationError({"expires": _("Choose when the token expires.")})
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_ACTIVE_TOKENS:
        raise ValidationError(
            _("You have %(count)d tokens: revoke one you no longer use first.")
            % {"count": MAX_ACTIVE_TOKENS}
        )
    now = timezone.now()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    for _attempt in range(5):
        new = tokens.generate()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    prefix=new.prefix,
                    secret_hash=new.hash,
                    created_at=now,
                    created_by=by,
                    expires_at=expires_at,
                )
        except IntegrityError:  # the same 8-character prefix as another token: again
            continue
        log.info("API token %s (%s) created for %s by %s", token.pk, name, user.pk, by.pk)
        return token, new.text
    raise RuntimeError("could not make a token with a unique prefix")


def revoke_token(token: ApiToken, *, by: User) -> bool:
    """Revoke `token` (its owner or an admin); False if it was revoked already. A revoked
    token stays listed, so its owner sees what became of it."""
    if by.pk != token.user_id and not by.is_superuser:
        raise PermissionDenied
    now = timezone.now()
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by
    )
    if changed:
        token.revoked_at, token.revoked_by = now, by
        log.info("API token %s revoked by %s", token.pk, by.pk)
    return bool(changed)


def find_token(text: str) -> ApiToken | None:
    """The token row matching a presented token (any state: the caller says why it is
    refused), with its user and role; None when nothing matches."""
    prefix = tokens.prefix_of(text)
    if prefix is None:
        return None
    token = (
        ApiToken.objects.select_related("user", "user__role", "user__department")
        .filter(prefix=prefix)
        .first()
    )
    if token is None or not tokens.matches(text, token.secret_hash):
        return None
    return token


def note_use(token: ApiToken, ip: str | None) -> None:
    """Record when and from where the token was last used, at most once a minute: the
    conditional update also keeps two concurrent requests from both writing."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_EVERY:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
    ).update(last_used_at=now, last_used_ip=ip)
    token.last_used_at, token.last_used_ip = now, ip


def tokens_of(user: User):
    """The user's own tokens, newest first (revoked and expired ones too)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def rate_limit() -> str:
    """The API's rate limit per token (and per person in the browser), in words: "120
    requests a minute"; "" when there is none."""
    from django.conf import settings
    from django.utils.translation import ngettext

    rate = getattr(settings, "API_RATE_LIMIT", "") or ""
    count, _slash, period = rate.partition("/")
    if not count.isdigit() or not period:
        return ""
    number = int(count)
    texts = {
        "s": ngettext("%(count)d request a second", "%(count)d requests a second", number),
        "m": ngettext("%(count)d request a minute", "%(count)d requests a minute", number),
        "h": ngettext("%(count)d request an hour", "%(count)d requests an hour", number),
        "d": ngettext("%(count)d request a day", "%(count)d requests a day", number),
    }
    text = texts.get(period[0])
    return text % {"count": number} if text else ""
