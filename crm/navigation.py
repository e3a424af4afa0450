"""The main navigation: each entry shows only when the user's role allows it.

crm names only its own pages here. A record type's list comes from its spec
(crm.records.RecordTypeSpec.menu); other pages of higher apps (pipelines' board,
reports) register an entry from their AppConfig.ready() with `register_nav_item`. The
menu lists them by `order`:

    10 Dashboard · 20 Customers · 30 Contacts · 40 Leads · 50 Deals · 60 Board ·
    70 Tasks · 80 Reports · 90 Imports · 1000 Administration
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.translation import gettext_lazy as _

from accounts import access


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str  # the entry's key too: registering the same URL name again replaces it
    icon: str
    # "record_type.action" the role needs, or None for every signed-in user.
    permission: str | None = None
    staff_only: bool = False
    order: int = 500  # place in the menu, smaller first (see the module's docstring)
    # Or a test of its own, for an entry no single permission decides (imports: may the
    # user import any record type?).
    check: Callable[[object], bool] | None = None

    def allowed(self, user) -> bool:
        if self.staff_only and not user.is_staff:
            return False
        if self.check is not None and not self.check(user):
            return False
        if self.permission:
            record_type, action = self.permission.split(".")
            return access.has_permission(user, record_type, action)
        return True


_items: dict[str, NavItem] = {}


def register_nav_item(item: NavItem) -> NavItem:
    """Add (or replace) an entry of the main menu."""
    _items[item.url_name] = item
    return item


def nav_items() -> list[NavItem]:
    """Every registered entry in menu order (by `order`, then as registered)."""
    return sorted(_items.values(), key=lambda item: item.order)


for _item in (
    NavItem(_("Dashboard"), "dashboard", "home", order=10),
    NavItem(_("Administration"), "admin:index", "settings", staff_only=True, order=1000),
):
    register_nav_item(_item)


# Each entry's URL, reversed once per process (a reverse() per entry on every page was
# ~60% of this context processor's time). Keyed by what reverse() depends on: the URL
# resolver (a new one after clear_url_caches(), as when a test overrides ROOT_URLCONF)
# and the script prefix (SCRIPT_NAME).
_urls: dict[tuple[str, object, str], str] = {}


def _url(url_name: str) -> str:
    key = (url_name, get_resolver(get_urlconf()), get_script_prefix())
    url = _urls.get(key)
    if url is None:
        if len(_urls) >= 256:  # a script prefix per request (a header some servers honour)
            _urls.clear()
        url = _urls[key] = reverse(url_name)
    return url


def navigation(request):
    """Context processor: the product name (brand_name) and the entries this user may open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"brand_name": settings.CRM_PRODUCT_NAME, "nav_items": []}
    path = request.path
    items = []
    for item in nav_items():
        if item.allowed(user):
            url = _url(item.url_name)
            active = path == url if url == "/" else path.startswith(url)
            items.append({"label": item.label, "url": url, "icon": item.icon, "active": active})
    return {"brand_name": settings.CRM_PRODUCT_NAME, "nav_items": items}
