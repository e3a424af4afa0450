from django.urls import path

from .views import contacts, exports

app_name = "contacts"

urlpatterns = [
    path("", contacts.ContactListView.as_view(), name="list"),
    path("export/", exports.ContactExportView.as_view(), name="export"),
    path("new/", contacts.ContactCreateView.as_view(), name="create"),
    path("<int:pk>/", contacts.ContactDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", contacts.ContactUpdateView.as_view(), name="edit"),
]
