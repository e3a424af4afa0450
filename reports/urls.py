from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.report, name="report"),
    path("customers/segment/<slug:key>/", views.customer_segment, name="customer_segment"),
]
