"""The API tokens page (/api-tokens/): a person lists their tokens, makes one and
revokes one. The full token of a new one is in the answer to the form's POST only — no
redirect, no session, no cache (`no-store`): it is shown exactly once.

Only one's own tokens exist here: anyone else's is a 404 (admins revoke others' in
Django admin)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm.params import parse_id

from . import services
from .forms import TokenForm
from .models import ApiToken


def _page(request, form: TokenForm, *, new_token: str = "", new: ApiToken | None = None):
    response = render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": list(services.tokens_of(request.user).select_related("revoked_by")),
            "new_token": new_token,
            "new": new,
            "rate_limit": services.rate_limit(),
        },
    )
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, text = services.create_token(
                request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.expires_in_days,
                by=request.user,
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for field, found in errors.items():
                form.add_error(field if field in form.fields else None, found)
        else:
            return _page(request, TokenForm(), new_token=text, new=token)
    return _page(request, form)


@login_required
@require_POST
def revoke(request, token_id):
    pk = parse_id(token_id)
    token = ApiToken.objects.filter(pk=pk, user=request.user).first() if pk else None
    if token is None:
        raise Http404
    if services.revoke_token(token, by=request.user):
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("api:tokens")
