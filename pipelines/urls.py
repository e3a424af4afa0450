from django.urls import include, path

urlpatterns = [
    path("leads/", include("pipelines.urls_leads")),
    path("deals/", include("pipelines.urls_deals")),
    path("pipelines/", include("pipelines.urls_board")),
]
