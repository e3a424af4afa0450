"""Each demo role's home (/) is about its work, and lists nothing twice:

- a sales rep (王芳): today, overdue, their open deals closing soon, their recent leads;
- the sales manager (张伟): the team's figures, their own today and overdue, the team's
  deals closing soon and the team (who is behind);
- customer service (赵敏): the search and recent service activity; no sales figures;
- the admin: the company's figures, the team and where the configuration is.

What a panel or figure is for is declared where it is registered (crm.dashboard_cards).
"""

import re
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from crm import dashboard_cards
from crm.dashboard_cards import ADMIN, MANAGER, REP, SERVICE

FIGURES = ["won", "weighted", "past", "activities"]
HOMES = {
    "wangfang": (REP, ["today", "overdue", "closing-deals", "recent-leads"], []),
    "zhangwei": (MANAGER, ["today", "overdue", "closing-deals", "team"], FIGURES),
    "zhaomin": (SERVICE, ["search", "service-activity"], []),
    "admin": (ADMIN, ["setup", "team"], FIGURES),
}


@pytest.fixture
def demo(db):
    call_command("seed_demo", force=True, stdout=StringIO())


def home(client, username):
    client.force_login(User.objects.get(username=username))
    response = client.get("/")
    assert response.status_code == 200
    return response


def shown_panels(html: str) -> list[str]:
    return re.findall(r'data-testid="panel-([a-z-]+)"', html)


def shown_figures(html: str) -> list[str]:
    return re.findall(r'card-link h-100" data-testid="card-([a-z]+)"', html)


def test_each_demo_role_has_its_own_home(client, demo):
    for username, (role, panels, figures) in HOMES.items():
        response = home(client, username)
        html = response.content.decode()
        assert response.context["home_role"] == role, username
        assert shown_panels(html) == panels, username
        assert shown_figures(html) == figures, username
        # Gone from every home: the account card and the "own records only" filler.
        assert 'data-testid="my-role"' not in html and 'data-testid="my-scope"' not in html


def test_no_home_lists_a_record_twice_and_each_has_work_in_it(client, demo):
    """(One seeded demo for several checks: seeding takes a while.)"""
    for username in HOMES:
        html = home(client, username).content.decode()
        assert 'data-testid="follow-ups"' not in html, username
        listed = Counter(re.findall(r'id="task-item-(\d+)"', html))
        record_link = (
            r'href="(/(?:deals|leads)/\d+/)"[^>]*data-testid="(?:closing-deal|recent-lead)"'
        )
        listed.update(re.findall(record_link, html))
        twice = [item for item, times in listed.items() if times > 1]
        assert twice == [], username
    the_reps_home_has_work_in_every_panel(client)
    customer_service_sees_service_work_not_sales_figures(client)


def the_reps_home_has_work_in_every_panel(client):
    response = home(client, "wangfang")
    ctx = response.context
    rep = User.objects.get(username="wangfang")
    assert ctx["today_tasks"] and ctx["overdue_tasks"]
    assert ctx["deals"] and all(d.owner_id == rep.pk for d in ctx["deals"])
    assert ctx["leads"] and all(lead.owner_id == rep.pk for lead in ctx["leads"])
    # Amounts are compact, the exact one in the title.
    html = response.content.decode()
    amount = re.search(r'<span class="app-money" title="(¥[\d,]+\.\d\d)">(¥[^<]+)</span>', html)
    assert amount and amount.group(2) != amount.group(1)


def customer_service_sees_service_work_not_sales_figures(client):
    response = home(client, "zhaomin")
    html = response.content.decode()
    assert 'data-testid="team-figures"' not in html
    assert 'action="/search/"' in html
    service = User.objects.get(username="zhaomin")
    activities = response.context["activities"]
    assert activities
    assert all(a.author.department_id == service.department_id for a in activities)
    times = [a.occurred_at for a in activities]
    assert times == sorted(times, reverse=True)


def test_figures_and_panels_declare_whom_they_are_for():
    keys = {panel.key: set(panel.roles) for panel in dashboard_cards.panels()}
    assert keys["team"] == {MANAGER, ADMIN}
    assert keys["search"] == {SERVICE}
    assert keys["recent-leads"] == {REP}
    with pytest.raises(ValueError):
        dashboard_cards.register(lambda user: [], roles=("boss",))
