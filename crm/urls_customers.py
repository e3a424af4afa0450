from django.urls import path

from .views import customers, exports

app_name = "customers"

urlpatterns = [
    path("", customers.CustomerListView.as_view(), name="list"),
    path("export/", exports.CustomerExportView.as_view(), name="export"),
    path("new/", customers.CustomerCreateView.as_view(), name="create"),
    path("duplicates/", customers.duplicates, name="duplicates"),
    path("<int:pk>/", customers.CustomerDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", customers.CustomerUpdateView.as_view(), name="edit"),
    path("<int:pk>/claim/", customers.claim_view, name="claim"),
    path("<int:pk>/release/", customers.release_view, name="release"),
    path("<int:pk>/transfer/", customers.transfer_view, name="transfer"),
    path(
        "<int:pk>/transfer/owners/",
        customers.transfer_owners_view,
        name="transfer_owners",
    ),
    path("<int:pk>/merge/", customers.CustomerMergeView.as_view(), name="merge"),
    path(
        "<int:pk>/activities/new/",
        customers.CustomerLogActivityView.as_view(),
        name="log_activity",
    ),
    path("<int:pk>/timeline/", customers.CustomerTimelineView.as_view(), name="timeline"),
    path("<int:pk>/history/", customers.CustomerHistoryView.as_view(), name="history"),
]
