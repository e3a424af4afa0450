from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from . import configuration, views_docs, views_tokens

app_name = "api"

v1 = [
    path("pipelines/", configuration.PipelineList.as_view(), name="pipelines"),
    path("pipelines/<int:pk>/", configuration.PipelineDetail.as_view(), name="pipeline"),
    path("dictionaries/", configuration.DictionaryList.as_view(), name="dictionaries"),
    path("dictionaries/<slug:code>/", configuration.DictionaryDetail.as_view(), name="dictionary"),
    path("custom-fields/", configuration.CustomFieldList.as_view(), name="custom_fields"),
]

urlpatterns = [
    path("api/v1/", include("integrations.api.records.urls")),
    path("api/v1/", include(v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views_docs.docs, name="docs"),
    path("api-tokens/", views_tokens.token_list, name="tokens"),
    path("api-tokens/<str:token_id>/revoke/", views_tokens.revoke, name="revoke_token"),
]
