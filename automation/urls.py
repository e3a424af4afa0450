from django.urls import path

from . import views

app_name = "automation"

# Mounted at notifications/ (crm/urls.py). Ids are read with crm.params.parse_id: a
# malformed one is a 404.
urlpatterns = [
    path("", views.notification_list, name="notifications"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("settings/", views.digest_settings, name="settings"),
    path("<str:notification_id>/open/", views.open_notification, name="open"),
    path("<str:notification_id>/read/", views.mark_read, name="mark_read"),
    path("<str:notification_id>/unread/", views.mark_unread, name="mark_unread"),
]
