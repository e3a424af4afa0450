from django.urls import path

from .views import activities, exports

app_name = "activities"

urlpatterns = [
    path("", activities.ActivityListView.as_view(), name="list"),
    path("export/", exports.ActivityExportView.as_view(), name="export"),
]
