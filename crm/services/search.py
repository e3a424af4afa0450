"""One search over the records a user may see: names, phones and emails.

    results = search(user, "138 0013 8000")
    for group in results.groups:        # customers, contacts, leads, deals
        group.records, group.count, group.more_url

Each record type is a `SearchSource`, named by its spec (crm.records: customers and
contacts in crm/record_types.py, leads and deals in pipelines/record_types.py) with a
row template, and the page shows each as one group, in registration order. Every query
goes through `visible_to(user)`: a record outside the user's scope is never found, not
even counted.

Matching (the same on SQLite and PostgreSQL):
- names and emails: case-insensitive "contains" (`UPPER(col) LIKE UPPER('%q%')`, which
  the trigram indexes of migration crm/0003 serve on PostgreSQL for 3+ characters, and
  the bigram indexes of crm/0004 for 2);
- phones, when the query looks like a phone number (digits, spaces, + - ( ) .) with at
  least 4 digits: the stored E.164 number equals the query parsed as a phone
  (`138 0013 8000`, `+86-138-0013-8000` -> `+8613800138000`), or contains its digits
  (`0013 8000`), or starts with them read as a full prefix (`+86 138`, `0086 138`,
  `021-5888` with the trunk 0 -> `+86215888`).

Cost: two queries per record type. The first collects the ids of at most CAP + 1
matches in no order, so a vague query ("有限公司") stops early and its count shows as
"200+"; the second loads the rows shown, exact matches (the name, or a phone, is the
query) first, then by name.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlencode

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import BooleanField, Case, F, Func, IntegerField, Q, Value, When
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext

from accounts import access
from accounts.phones import normalize_phone

MIN_LENGTH = 2
MAX_LENGTH = 100
# Rows shown per group (the closest; "see all" opens the filtered list); the count says
# how many matched, up to CAP ("200+").
LIMIT = 10
CAP = 200
MIN_PHONE_DIGITS = 4

_PHONE_LIKE = re.compile(r"[\d\s()+\-.]+")


@dataclass(frozen=True)
class SearchSource:
    """A record type the search covers."""

    key: str  # "customers": the group's id on the page
    label: str  # plural, shown as the group title
    model: type[models.Model]
    name_field: str  # matched with icontains; a record whose name is the query ranks first
    email_fields: tuple[str, ...] = ()
    phone_fields: tuple[str, ...] = ()
    select_related: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # the columns the row template uses
    row_template: str = ""  # renders one record as `record`
    # Or, faster (the page shows up to 80 rows), a function building the row's HTML:
    # render_row(hit, page: RowPage) -> SafeString (crm.search_rows).
    render_row: Callable[..., str] | None = None
    detail_url: str = ""  # URL name taking the pk, e.g. "customers:detail"
    # The record a hit belongs to, linked on its row: (field, URL name taking its id).
    parent: tuple[str, str] | None = None
    list_url: str = ""  # URL name of the list that accepts ?q=, for "see all"
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


# --- Results --------------------------------------------------------------------------


@dataclass
class SearchHit:
    record: models.Model
    url: str
    parent_url: str = ""
    html: str = ""  # the row, when its source renders rows itself (render_row)


@dataclass
class SearchGroup:
    source: SearchSource
    hits: list[SearchHit]
    count: int  # matches the user may see, not only those shown; above CAP: "more"
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

    @property
    def capped(self) -> bool:
        """More than CAP matched: the count shows as "200+"."""
        return self.count > CAP

    @property
    def count_display(self) -> str:
        return f"{CAP}+" if self.capped else str(self.count)


@dataclass
class SearchResults:
    query: str  # the query as searched (trimmed)
    groups: list[SearchGroup] = field(default_factory=list)
    message: str = ""  # why nothing was searched, e.g. a query that is too short
    searched: bool = False

    @property
    def total(self) -> int:
        return sum(min(group.count, CAP) for group in self.groups)

    @property
    def capped(self) -> bool:
        return any(group.capped for group in self.groups)


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


# Fields with a PostgreSQL bigram index (migration crm/0004; other apps' through
# `register_bigram_index`): (app_label.model, field).
BIGRAM_INDEXED = {
    ("crm.customer", "name"),
    ("crm.customer", "email"),
    ("crm.contact", "name"),
    ("crm.contact", "email"),
}


def register_bigram_index(model: type[models.Model], field_name: str) -> None:
    """Declare that a migration made a crm_bigrams(UPPER(col)) index on the field, so
    2-character searches of it use the index (see HasBigram)."""
    BIGRAM_INDEXED.add((model._meta.label_lower, field_name))


class HasBigram(Func):
    """PostgreSQL: the 2 characters `value` occur in UPPER(field).

    The same as UPPER(field) LIKE UPPER('%value%') for 2 characters (icontains_q); the
    GIN index on crm_bigrams(UPPER(field)) finds those rows, which no trigram index can.
    """

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        field_sql, field_params = compiler.compile(self.source_expressions[0])
        value_sql, value_params = compiler.compile(self.source_expressions[1])
        sql = f"crm_bigrams(UPPER({field_sql})) @> ARRAY[UPPER({value_sql})::text]"
        return sql, (*field_params, *value_params)


def _target(model: type[models.Model], path: str) -> tuple[str, str]:
    """(app_label.model, field) that `path` (e.g. "customer__name") ends on."""
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    return model._meta.label_lower, name


def icontains_q(model: type[models.Model], path: str, query: str) -> Q:
    """`path__icontains=query`, in a form PostgreSQL's indexes serve from 2 characters.

    For 2 characters on PostgreSQL the bigram condition stands alone: UPPER(col) holds
    the pair UPPER(query) exactly when crm_bigrams(UPPER(col)) does, so the results are
    the LIKE's. Alone, it is the index's condition, which PostgreSQL estimates from the
    index's statistics (上海: 10,900 of 100,000 names, right) rather than multiplying in a
    guess for the LIKE (250: it then sorted every match to show 25), and it is not
    checked again on each row found.
    """
    if (
        len(query) == 2
        and connection.vendor == "postgresql"
        and _target(model, path) in BIGRAM_INDEXED
    ):
        return Q(HasBigram(F(path), Value(query)))
    return Q(**{f"{path}__icontains": query})


def match_q(source: SearchSource, query: str, phones: PhoneTerms | None = None) -> Q:
    """The filter for records of `source` matching `query`."""
    phones = phone_terms(query) if phones is None else phones
    condition = icontains_q(source.model, source.name_field, query)
    for name in source.email_fields:
        condition |= icontains_q(source.model, name, query)
    if phones:
        for name in source.phone_fields:
            condition |= phones.q(name)
    return condition


def _exact_q(source: SearchSource, query: str, phones: PhoneTerms) -> Q:
    """The name is the query, or a phone is the query read as a phone number."""
    exact = Q(**{f"{source.name_field}__iexact": query})
    if phones.exact:
        for name in source.phone_fields:
            exact |= Q(**{name: phones.exact})
    return exact


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


_PK = 987654321


def _url_maker(name: str):
    """`pk -> URL` for a URL name taking one id: reversed once, not once per hit."""
    sample = _url(name, _PK) if name else ""
    if not sample or sample.count(str(_PK)) != 1:
        return lambda pk: _url(name, pk) if name else ""
    before, after = sample.split(str(_PK))
    return lambda pk: f"{before}{pk}{after}"


def search_source(
    source: SearchSource, user, query: str, *, limit: int = LIMIT, phones: PhoneTerms | None = None
) -> SearchGroup | None:
    """Matches of one record type: None when the user's role may not view that type."""
    if not access.has_permission(user, source.record_type, "view"):
        return None
    phones = phone_terms(query) if phones is None else phones
    hidden = access.hidden_fields(user, source.record_type)
    if hidden:
        # A field hidden from the user's role is not searched (a match would reveal it).
        source = dataclasses.replace(
            source,
            email_fields=tuple(f for f in source.email_fields if f not in hidden),
            phone_fields=tuple(f for f in source.phone_fields if f not in hidden),
        )
    visible = source.model.objects.visible_to(user)
    # 1. Which records match: at most CAP + 1, in no order, so a vague query stops early.
    matches = visible.filter(match_q(source, query, phones)).order_by()
    ids = list(matches.values_list("pk", flat=True)[: CAP + 1])
    if not ids:
        return SearchGroup(source=source, hits=[], count=0)
    # 2. The rows shown, exact matches first. When the cap cut the ids short, exact
    # matches it left out come back: typing a whole name always shows that record.
    exact = _exact_q(source, query, phones)
    rows = visible.filter(Q(pk__in=ids) | exact) if len(ids) > CAP else visible.filter(pk__in=ids)
    rank = Case(When(exact, then=Value(0)), default=Value(1), output_field=IntegerField())
    rows = (
        rows.select_related(*source.select_related)
        .only(*source.only)
        .annotate(search_rank=rank)
        .order_by("search_rank", source.name_field, "pk")[:limit]
    )
    url = _url_maker(source.detail_url)
    parent_field, parent_url = source.parent or ("", "")
    parent = _url_maker(parent_url)
    hits = [
        SearchHit(
            record,
            url(record.pk),
            parent(getattr(record, f"{parent_field}_id")) if parent_field else "",
        )
        for record in rows
    ]
    more_url = ""
    if len(ids) > len(hits) and source.list_url:
        base = _url(source.list_url)
        more_url = f"{base}?{urlencode({'q': query})}" if base else ""
    return SearchGroup(source=source, hits=hits, count=len(ids), more_url=more_url)


def search(user, raw_query, *, limit: int = LIMIT) -> SearchResults:
    """Customers, contacts (and every registered type) the user may see that match:
    at most two queries per type."""
    query = clean_query(raw_query)
    if not query:
        return SearchResults(query="")
    if len(query) < MIN_LENGTH:
        message = gettext("Type at least %(count)d characters to search.") % {"count": MIN_LENGTH}
        return SearchResults(query=query, message=message)
    phones = phone_terms(query)
    groups = []
    with _without_parallel_workers():
        for source in sources():
            group = search_source(source, user, query, limit=limit, phones=phones)
            if group is not None:
                groups.append(group)
    return SearchResults(query=query, groups=groups, searched=True)


@contextmanager
def _without_parallel_workers():
    """PostgreSQL: the search's queries run without parallel workers. Each reads at most
    CAP + 1 ids or a page of rows; starting workers for one cost more than the query
    (at 1M customers: 44 ms for a contact search that found nothing) and takes CPUs
    other requests need."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield
