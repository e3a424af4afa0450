from django.urls import path

from .views import deals

app_name = "deals"

urlpatterns = [
    path("", deals.DealListView.as_view(), name="list"),
    path("export/", deals.DealExportView.as_view(), name="export"),
    path("new/", deals.DealCreateView.as_view(), name="create"),
    path("contacts/", deals.contact_options, name="contact_options"),
    path("<int:pk>/", deals.DealDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", deals.DealUpdateView.as_view(), name="edit"),
    path("<int:pk>/move/", deals.DealMoveView.as_view(), name="move"),
    path("<int:pk>/pipeline/", deals.DealChangePipelineView.as_view(), name="change_pipeline"),
    path("<int:pk>/activities/new/", deals.DealLogActivityView.as_view(), name="log_activity"),
]
