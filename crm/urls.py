from django.contrib import admin
from django.urls import include, path

from .views import branding, dashboard

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("customers/", include("crm.urls_customers")),
    path("contacts/", include("crm.urls_contacts")),
    path("tasks/", include("crm.urls_tasks")),
    path("activities/", include("crm.urls_activities")),
    path("", include("crm.urls_search")),
    path("", include("pipelines.urls")),
    path("reports/", include("reports.urls")),
    path("imports/", include("imports.urls")),
    path("notifications/", include("automation.urls")),
    path("", include("integrations.api.urls")),
    path("", include("integrations.webhooks.urls")),
    path("", include("integrations.webforms.urls")),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", dashboard.healthz, name="healthz"),
    path("favicon.ico", branding.favicon, name="favicon"),
]

handler400 = dashboard.bad_request
