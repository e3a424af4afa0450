from django.urls import path

from .views import customers

app_name = "customers"

urlpatterns = [
    path("", customers.CustomerListView.as_view(), name="list"),
]
