"""The API's record endpoints: customers, contacts, activities, tasks, leads, deals, each
at /api/v1/<path>/ from its ApiSpec (integrations/api/records/specs.py)."""

from rest_framework.routers import SimpleRouter

from .specs import API_SPECS
from .views import viewset_for

router = SimpleRouter()
for spec in API_SPECS:
    router.register(spec.path, viewset_for(spec), basename=spec.key)

urlpatterns = router.urls
