"""The OpenAPI document (/api/schema/, drf-spectacular) and the docs page (/api/docs/:
Swagger UI from static/vendor/swagger-ui, no CDN). Both need a signed-in person or a
token: the document names every field of every record type."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import services


@login_required
@require_GET
def docs(request):
    return render(request, "api/docs.html", {"rate_limit": services.rate_limit()})
