from django.urls import path

from .views import leads

app_name = "leads"

urlpatterns = [
    path("", leads.LeadListView.as_view(), name="list"),
    path("export/", leads.LeadExportView.as_view(), name="export"),
    path("new/", leads.LeadCreateView.as_view(), name="create"),
    path("<int:pk>/", leads.LeadDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", leads.LeadUpdateView.as_view(), name="edit"),
    path("<int:pk>/move/", leads.LeadMoveView.as_view(), name="move"),
    path("<int:pk>/claim/", leads.LeadClaimView.as_view(), name="claim"),
    path("<int:pk>/lose/", leads.LeadLoseView.as_view(), name="lose"),
    path("<int:pk>/convert/", leads.LeadConvertView.as_view(), name="convert"),
    path("<int:pk>/activities/new/", leads.LeadLogActivityView.as_view(), name="log_activity"),
]
