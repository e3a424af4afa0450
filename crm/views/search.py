"""The search page (/search/?q=): every registered record type (customers, contacts, leads,
deals) the user may see, by name, phone or email. Typing on the page refreshes the results
with htmx."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ..search_rows import RowPage
from ..services import search as services


@login_required
def search(request):
    results = services.search(request.user, request.GET.get("q", ""))
    page = RowPage(request.user, results.query)
    for group in results.groups:
        if group.source.render_row is not None:
            for hit in group.hits:
                hit.html = group.source.render_row(hit, page)
    template = "crm/search/results.html" if request.htmx else "crm/search.html"
    return render(request, template, {"results": results, "query": results.query})
