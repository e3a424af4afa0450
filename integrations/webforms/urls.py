from django.urls import path

from . import views

app_name = "webforms"

urlpatterns = [
    path("forms/<str:key>/", views.page, name="page"),
    path("forms/<str:key>/embed.js", views.embed, name="embed"),
    path("forms/<str:key>/submit/", views.submit, name="submit"),
    path("api/forms/<str:key>/", views.api, name="api"),
]
