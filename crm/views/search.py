"""The search page (/search/?q=): every registered record type (customers, contacts, leads,
deals) the user may see, by name, phone or email. Typing on the page refreshes the results
with htmx."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ..services import search as services


@login_required
def search(request):
    results = services.search(request.user, request.GET.get("q", ""))
    template = "crm/search/results.html" if request.htmx else "crm/search.html"
    return render(request, template, {"results": results, "query": results.query})
