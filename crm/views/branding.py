"""The product's icon where browsers look for it without a <link>: /favicon.ico."""

from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@require_safe
@cache_control(public=True, max_age=24 * 60 * 60)
def favicon(request):
    """Browsers ask every site for /favicon.ico (the admin's pages and a PDF or an image
    opened on its own carry no <link rel="icon">): send them to the static icon, which
    is served with a far-future expiry under its hashed name."""
    return redirect(static("crm/img/favicon.ico"))
