"""One search over the records a user may see: names, phones and emails.

    results = search(user, "138 0013 8000")
    for group in results.groups:        # customers, contacts (later: leads, deals)
        group.records, group.count, group.more_url

Each record type is a `SearchSource`; another app adds its own with
`register(SearchSource(...))` and a row template, and the page shows it as one more
group. Every query goes through `visible_to(user)`: a record outside the user's scope
is never found, not even counted.

Matching (the same on SQLite and PostgreSQL):
- names and emails: case-insensitive "contains" (`UPPER(col) LIKE UPPER('%q%')`, which
  the trigram indexes of migration crm/0003 serve on PostgreSQL for 3+ characters);
- phones, when the query looks like a phone number (digits, spaces, + - ( ) .) with at
  least 4 digits: the stored E.164 number equals the query parsed as a phone
  (`138 0013 8000`, `+86-138-0013-8000` -> `+8613800138000`), or contains its digits
  (`0013 8000`), or starts with them read as a full prefix (`+86 138`, `0086 138`,
  `021-5888` with the trunk 0 -> `+86215888`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlencode

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Count, IntegerField, Q, Value, When, Window
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.phones import normalize_phone

from ..models import Contact, Customer

MIN_LENGTH = 2
MAX_LENGTH = 100
# Rows shown per group; the count says how many more matched.
LIMIT = 20
MIN_PHONE_DIGITS = 4

_PHONE_LIKE = re.compile(r"[\d\s()+\-.]+")


@dataclass(frozen=True)
class SearchSource:
    """A record type the search covers."""

    key: str  # "customers": the group's id on the page
    label: str  # plural, shown as the group title
    model: type[models.Model]
    name_field: str  # matched with icontains and used to rank exact and prefix matches first
    email_fields: tuple[str, ...] = ()
    phone_fields: tuple[str, ...] = ()
    select_related: tuple[str, ...] = ()
    row_template: str = ""  # renders one record as `record`
    detail_url: str = ""  # URL name taking the pk, e.g. "customers:detail"
    list_url: str = ""  # URL name of the list that accepts ?q=, for "show all"
    icon: str = "search"

    @property
    def record_type(self) -> str:
        return self.model.record_type


_sources: dict[str, SearchSource] = {}


def register(source: SearchSource) -> SearchSource:
    """Add (or replace) a record type in the search; groups show in registration order."""
    _sources[source.key] = source
    return source


def sources() -> list[SearchSource]:
    return list(_sources.values())


register(
    SearchSource(
        key="customers",
        label=_("Customers"),
        model=Customer,
        name_field="name",
        email_fields=("email",),
        phone_fields=("phone",),
        select_related=("owner", "level"),
        row_template="crm/search/customer_row.html",
        detail_url="customers:detail",
        list_url="customers:list",
        icon="building",
    )
)
register(
    SearchSource(
        key="contacts",
        label=_("Contacts"),
        model=Contact,
        name_field="name",
        email_fields=("email",),
        phone_fields=("mobile", "phone"),
        select_related=("customer", "customer__owner"),
        row_template="crm/search/contact_row.html",
        detail_url="contacts:detail",
        list_url="contacts:list",
        icon="address-book",
    )
)


# --- Results --------------------------------------------------------------------------


@dataclass
class SearchHit:
    record: models.Model
    url: str


@dataclass
class SearchGroup:
    source: SearchSource
    hits: list[SearchHit]
    count: int  # all matches the user may see, not only those shown
    more_url: str = ""  # the record list filtered by the query, when it has more

    @property
    def key(self) -> str:
        return self.source.key

    @property
    def label(self) -> str:
        return str(self.source.label)

    @property
    def records(self) -> list[models.Model]:
        return [hit.record for hit in self.hits]

    @property
    def has_more(self) -> bool:
        return self.count > len(self.hits)


@dataclass
class SearchResults:
    query: str  # the query as searched (trimmed)
    groups: list[SearchGroup] = field(default_factory=list)
    message: str = ""  # why nothing was searched, e.g. a query that is too short
    searched: bool = False

    @property
    def total(self) -> int:
        return sum(group.count for group in self.groups)


# --- Matching -------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneTerms:
    exact: str = ""  # the query parsed as a full number, E.164
    digits: str = ""  # the query's digits, matched anywhere
    prefix: str = ""  # E.164 prefix when the query starts with +, 00 or a trunk 0

    def q(self, field_name: str) -> Q:
        condition = Q()
        if self.exact:
            condition |= Q(**{field_name: self.exact})
        if self.digits:
            condition |= Q(**{f"{field_name}__contains": self.digits})
        if self.prefix:
            condition |= Q(**{f"{field_name}__startswith": self.prefix})
        return condition

    def __bool__(self) -> bool:
        return bool(self.exact or self.digits or self.prefix)


@cache
def _default_country_code() -> str:
    return str(phonenumbers.country_code_for_region(settings.PHONE_DEFAULT_REGION))


def phone_terms(query: str) -> PhoneTerms:
    """How a query that looks like (part of) a phone number matches stored E.164 numbers."""
    text = unicodedata.normalize("NFKC", query).strip()  # full-width digits too
    if not _PHONE_LIKE.fullmatch(text):
        return PhoneTerms()
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_PHONE_DIGITS:
        return PhoneTerms()
    try:
        exact = normalize_phone(text)
    except ValidationError:
        exact = ""
    prefix = ""
    if text.startswith("+"):
        prefix = "+" + digits
    elif digits.startswith("00"):
        prefix = "+" + digits[2:]
    elif digits.startswith("0"):
        prefix = "+" + _default_country_code() + digits[1:]
    if len(prefix) - 1 < MIN_PHONE_DIGITS:
        prefix = ""
    return PhoneTerms(exact=exact, digits=digits, prefix=prefix)


def clean_query(raw) -> str:
    return " ".join(str(raw or "").split())[:MAX_LENGTH]


def match_q(source: SearchSource, query: str, phones: PhoneTerms | None = None) -> Q:
    """The filter for records of `source` matching `query`."""
    phones = phone_terms(query) if phones is None else phones
    condition = Q(**{f"{source.name_field}__icontains": query})
    for name in source.email_fields:
        condition |= Q(**{f"{name}__icontains": query})
    if phones:
        for name in source.phone_fields:
            condition |= phones.q(name)
    return condition


def _rank(source: SearchSource, query: str, phones: PhoneTerms) -> Case:
    """0: the name or a phone is exactly the query; 1: the name starts with it; 2: other."""
    exact = Q(**{f"{source.name_field}__iexact": query})
    if phones.exact:
        for name in source.phone_fields:
            exact |= Q(**{name: phones.exact})
    return Case(
        When(exact, then=Value(0)),
        When(Q(**{f"{source.name_field}__istartswith": query}), then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def search_source(
    source: SearchSource, user, query: str, *, limit: int = LIMIT, phones: PhoneTerms | None = None
) -> SearchGroup | None:
    """Matches of one record type: None when the user's role may not view that type."""
    if not access.has_permission(user, source.record_type, "view"):
        return None
    phones = phone_terms(query) if phones is None else phones
    queryset = (
        source.model.objects.visible_to(user)
        .filter(match_q(source, query, phones))
        .select_related(*source.select_related)
        # The count of all matches rides along on every row: one query per group.
        .annotate(search_rank=_rank(source, query, phones), search_total=Window(Count("pk")))
        .order_by("search_rank", source.name_field, "pk")
    )
    records = list(queryset[:limit])
    count = records[0].search_total if records else 0
    hits = [SearchHit(record, _url(source.detail_url, record.pk)) for record in records]
    more_url = ""
    if count > len(records) and source.list_url:
        base = _url(source.list_url)
        more_url = f"{base}?{urlencode({'q': query})}" if base else ""
    return SearchGroup(source=source, hits=hits, count=count, more_url=more_url)


def search(user, raw_query, *, limit: int = LIMIT) -> SearchResults:
    """Customers, contacts (and every registered type) the user may see that match."""
    query = clean_query(raw_query)
    if not query:
        return SearchResults(query="")
    if len(query) < MIN_LENGTH:
        message = gettext("Type at least %(count)d characters to search.") % {"count": MIN_LENGTH}
        return SearchResults(query=query, message=message)
    phones = phone_terms(query)
    groups = []
    for source in sources():
        group = search_source(source, user, query, limit=limit, phones=phones)
        if group is not None:
            groups.append(group)
    return SearchResults(query=query, groups=groups, searched=True)
