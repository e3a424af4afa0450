"""The main navigation: each entry shows only when the user's role allows it."""

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts import access


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str
    # "record_type.action" the role needs, or None for every signed-in user.
    permission: str | None = None
    staff_only: bool = False

    def allowed(self, user) -> bool:
        if self.staff_only and not user.is_staff:
            return False
        if self.permission:
            record_type, action = self.permission.split(".")
            return access.has_permission(user, record_type, action)
        return True


NAV_ITEMS: list[NavItem] = [
    NavItem(_("Dashboard"), "dashboard", "home"),
    NavItem(_("Customers"), "customers:list", "building", permission="customer.view"),
    NavItem(_("Contacts"), "contacts:list", "address-book", permission="contact.view"),
    NavItem(_("Leads"), "leads:list", "user-circle", permission="lead.view"),
    NavItem(_("Deals"), "deals:list", "briefcase", permission="deal.view"),
    NavItem(_("Board"), "board:index", "timeline", permission="deal.view"),
    NavItem(_("Tasks"), "tasks:list", "list-check", permission="task.view"),
    NavItem(_("Reports"), "reports:index", "report-analytics", permission="deal.view"),
    NavItem(_("Administration"), "admin:index", "settings", staff_only=True),
]


def navigation(request):
    """Context processor: the site name and the entries this user may open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"brand_name": settings.CRM_SITE_NAME, "nav_items": []}
    path = request.path
    items = []
    for item in NAV_ITEMS:
        if item.allowed(user):
            url = reverse(item.url_name)
            active = path == url if url == "/" else path.startswith(url)
            items.append({"label": item.label, "url": url, "icon": item.icon, "active": active})
    return {"brand_name": settings.CRM_SITE_NAME, "nav_items": items}
