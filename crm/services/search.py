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

Cost: the types together, not two queries per type: one statement, or on PostgreSQL
outside a transaction two or three in one snapshot (see "One statement, or two phases"
below). Per type, the search collects the ids of at most CAP + 1 matches in no order, so
a vague query ("有限公司") stops early and its count shows as "200+", then the rows shown,
exact matches (the name, or a phone, is the query) first, then by name. The rows come
back as values and become model instances without a queryset per type.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlencode

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import BooleanField, Case, F, Func, IntegerField, Q, Value, When
from django.db.models.expressions import RawSQL
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
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
    ("crm.contact", "wechat"),  # migration crm/0023
    ("crm.task", "title"),  # migration crm/0024
    ("crm.activity", "content"),
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
_url_makers: dict[tuple, Callable[[object], str]] = {}


def _url_maker(name: str):
    """`pk -> URL` for a URL name taking one id: reversed once per URL configuration and
    script prefix, not once per hit (nor per request)."""
    key = (name, get_script_prefix(), get_urlconf())
    maker = _url_makers.get(key)
    if maker is None:
        sample = _url(name, _PK) if name else ""
        if not sample or sample.count(str(_PK)) != 1:
            maker = lambda pk: _url(name, pk) if name else ""  # noqa: E731
        else:
            before, after = sample.split(str(_PK))
            maker = lambda pk: f"{before}{pk}{after}"  # noqa: E731
        _url_makers[key] = maker
    return maker


# --- One statement, or two phases in one snapshot ------------------------------------
#
# The one statement (SQLite; PostgreSQL inside a transaction):
#
#   WITH search_m0(id, r) AS MATERIALIZED (      -- per type: which records match, at
#          SELECT id, <0 if exact else 1> ...    -- most CAP + 1, in no order (the scope
#          WHERE <scope> AND <match> LIMIT 201), -- and the match: the ORM's SQL)
#        search_e0(id) AS MATERIALIZED (         -- the exact matches the cap left out:
#          SELECT id ... WHERE <scope> AND <exact>   -- read only when the cap was hit
#          AND (SELECT COUNT(*) FROM search_m0) > CAP),
#        ...
#   SELECT 0, (SELECT COUNT(*) FROM search_m0), <type 0's columns>, NULLs for the others
#     FROM (the rows of type 0: the ids above, exact first, then by name, LIMIT 10) s0
#   UNION ALL SELECT 1, ... -- each type's columns in its own slots, NULL elsewhere
#
# PostgreSQL outside a transaction (a request): the same parts in one REPEATABLE READ
# transaction, as up to three statements that plan faster (see _two_phases): the
# search_m CTEs' ids; the left-out exact matches of the capped types, if any; the rows
# of the types that found any, by `id = ANY(ids)`.
#
# The per-request part (scope, match, exact) is compiled by the ORM; each type's rows
# part reads only the CTEs or two id arrays and is compiled once per process. The rows
# come back as values, converted as the ORM would, and become model instances (from_db,
# with their select_related relations cached) without a queryset.


@dataclass
class _Node:
    """A model in a row: the record, or a relation of it (select_related)."""

    model: type[models.Model]
    attnames: list[str]
    positions: list[int] = field(default_factory=list)  # in the type's columns
    pk_position: int = 0
    children: dict[str, _Node] = field(default_factory=dict)  # relation name -> node


@dataclass(eq=False)  # hashed by identity: a key of _union_sql
class _RowsPlan:
    """The parameterless SQL of one type's rows, its columns and how to read them."""

    source: SearchSource
    sql: str
    cast_types: list[str]  # each column's SQL type, for the NULLs of the other types
    converters: dict  # column -> (converters, expression), as the ORM applies them
    root: _Node
    # Two-phase form (ids given): which id list each parameter is, "ids" or "exact".
    slots: tuple[str, ...] = ()


_rows_plans: dict[tuple, _RowsPlan] = {}


def _tree(source: SearchSource) -> tuple[_Node, list[str]]:
    """The models and columns a row reads (pk, `only`, the keys of `select_related` and
    `parent`) and their values() paths, in column order."""
    model = source.model
    root = _Node(model, [])
    relations = set(source.select_related)
    for path in source.select_related:
        parts = path.split("__")
        relations.update("__".join(parts[:n]) for n in range(1, len(parts)))
    nodes = {(): root}
    for rel in sorted(relations, key=lambda p: p.count("__")):
        parts = tuple(rel.split("__"))
        parent = nodes[parts[:-1]]
        related = parent.model._meta.get_field(parts[-1])
        node = _Node(related.related_model, [])
        parent.children[parts[-1]] = node
        nodes[parts] = node
    wanted: dict[tuple, list[str]] = {key: [] for key in nodes}
    for path in source.only:
        *rel, name = path.split("__")
        wanted.setdefault(tuple(rel), []).append(name)
    if source.parent:
        wanted[()].append(source.parent[0])
    paths = []
    for key, node in nodes.items():
        opts = node.model._meta
        names = [opts.pk.attname]
        if not source.only:  # no `only`: every column, as select_related() loads them
            names += [f.attname for f in opts.concrete_fields]
        for name in [*wanted.get(key, ()), *node.children]:
            attname = opts.get_field(name).attname
            if attname not in names:
                names.append(attname)
        # from_db() takes the values in the model's field order.
        node.attnames = [f.attname for f in opts.concrete_fields if f.attname in names]
        node.pk_position = len(paths) + node.attnames.index(opts.pk.attname)
        prefix = "__".join(key)
        for attname in node.attnames:
            node.positions.append(len(paths))
            paths.append(f"{prefix}__{attname}" if prefix else attname)
    return root, paths


_IDS, _EXACT = "\x00search ids", "\x00search exact ids"


def _rows_plan(source: SearchSource, index: int, limit: int, given: bool = False) -> _RowsPlan:
    """One type's rows: those of the CTEs search_m<index> and search_e<index> (one
    statement), or, `given`, those of two id arrays passed as parameters (two phases,
    PostgreSQL)."""
    # The source itself (frozen) in the key: a role that hides fields searches a source
    # of its own, and alternating with another role rebuilt the plan on every request.
    key = (source, index, limit, given, connection.vendor, connection.alias)
    plan = _rows_plans.get(key)
    if plan is not None:
        return plan
    model = source.model
    qn = connection.ops.quote_name
    table, pk = qn(model._meta.db_table), qn(model._meta.pk.column)
    name = qn(model._meta.get_field(source.name_field).column)
    # Only names this module makes: no input reaches these strings.
    if given:
        matched, exact, ids_params = "= ANY(%s)", "= ANY(%s)", (_IDS, _EXACT)
    else:
        left_out = f"SELECT id FROM search_e{index}"  # noqa: S608
        matched = f"IN (SELECT id FROM search_m{index} UNION ALL {left_out})"  # noqa: S608
        exact = f"IN (SELECT id FROM search_m{index} WHERE r = 0 UNION ALL {left_out})"  # noqa: S608
        ids_params = ()
    # The ids shown, from the record's own table: exact matches first, then by name. Their
    # relations (owner, stage, customer) are joined for those `limit` rows only, not for
    # all CAP + 1 matches (a manager's 上海: 600 rows joined to show 30).
    shown = (
        f"SELECT p.{pk} FROM {table} p WHERE p.{pk} {matched} "  # noqa: S608
        f"ORDER BY CASE WHEN p.{pk} {exact} THEN 0 ELSE 1 END, p.{name}, p.{pk} LIMIT {int(limit)}"
    )
    found = RawSQL(f"{table}.{pk} IN ({shown})", ids_params, output_field=BooleanField())  # noqa: S611
    exact_params = (_EXACT,) if given else ()
    rank = RawSQL(  # noqa: S611
        f"CASE WHEN {table}.{pk} {exact} THEN 0 ELSE 1 END",
        exact_params,
        output_field=IntegerField(),
    )
    root, paths = _tree(source)
    rows = (
        model._base_manager.filter(found)
        .annotate(search_rank=rank)
        .order_by("search_rank", source.name_field, "pk")
        .values_list(*paths)
    )
    compiler = rows.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    columns = [column for column, _, _ in compiler.select]
    slots = tuple("ids" if p == _IDS else "exact" for p in params)
    expected = ("ids", "exact", "exact") if given else ()
    if any(p not in (_IDS, _EXACT) for p in params) or sorted(slots) != sorted(expected):
        raise RuntimeError(f"search rows of {source.key}: unexpected SQL {sql!r}")  # never
    if len(columns) != len(paths):
        raise RuntimeError(f"search rows of {source.key}: unexpected columns {sql!r}")
    plan = _RowsPlan(
        source=source,
        sql=sql,
        cast_types=[column.output_field.cast_db_type(connection) for column in columns],
        converters=compiler.get_converters(columns),
        root=root,
        slots=slots,
    )
    _rows_plans[key] = plan
    return plan


def _instance(node: _Node, values: list, db: str):
    if values[node.pk_position] is None:  # a relation that is empty (LEFT OUTER JOIN)
        return None
    obj = node.model.from_db(db, node.attnames, [values[p] for p in node.positions])
    for name, child in node.children.items():
        obj._meta.get_field(name).set_cached_value(obj, _instance(child, values, db))
    return obj


@dataclass
class _Planned:
    source: SearchSource  # with the fields hidden from the user left out of the match
    index: int
    ctes: list[tuple[str, str, tuple]]  # (name with columns, SQL, params)
    plan: _RowsPlan  # the rows of the one statement, or of the two phases' second
    ids: list = field(default_factory=list)  # two phases: what the first found
    exact: list = field(default_factory=list)
    count: int = 0
    left_out: tuple[str, tuple] | None = None  # two phases: the exact matches' SQL, params


def _statements(source, index, user, query, phones, given, limit) -> list[tuple[str, str, tuple]]:
    """The per-request SQL of one type, compiled by the ORM: (name, SQL, params) of its
    CTEs, then (two phases) of the query of the exact matches the cap left out."""
    visible = source.model.objects.visible_to(user).order_by()
    exact = _exact_q(source, query, phones)
    # 1. Which records match: at most CAP + 1, in no order, so a vague query stops early;
    # whether each is an exact match (the name, or a phone, is the query) for the order.
    not_exact = Case(When(exact, then=Value(0)), default=Value(1), output_field=IntegerField())
    matches = (
        visible.filter(match_q(source, query, phones))
        .annotate(search_rank=not_exact)
        .values_list("pk", "search_rank")[: CAP + 1]
    )
    # 2. When the cap cut the matches short, the exact matches it left out: typing a whole
    # name always shows that record. In one statement: a CTE read only when the cap was
    # reached. In two phases: a query of its own when it was (see _run_two_phases). The
    # first `limit` of them in the rows' order are all the rows can show (at 1M, 987
    # contacts named 王伟 were read by key to show 10).
    left_out = visible.filter(exact).order_by(source.name_field, "pk").values_list("pk")
    parts = [(f"search_m{index}(id, r)", matches)]
    if given:
        parts.append(("", left_out[:limit]))
    else:
        capped = f"(SELECT COUNT(*) FROM search_m{index}) > %s"  # noqa: S608 - no input in it
        capped_q = Q(RawSQL(capped, (CAP,), output_field=BooleanField()))  # noqa: S611
        parts.append((f"search_e{index}(id)", left_out.filter(capped_q)[:limit]))
    return [(name, *queryset.query.sql_with_params()) for name, queryset in parts]


# --- The per-request SQL, compiled once per shape -------------------------------------
#
# Compiling a type's scope and match with the ORM cost ~1 ms per type and request (a
# quarter of a search's time in Python). The SQL differs between requests only by its
# shape: the type, the fields the role hides, the user's data scope and how many
# departments it spans, a 2-character query (bigram indexes) or a longer one, and which
# phone forms the query has. Its parameters hold the user, the departments and the
# query. So each shape is compiled once with markers in place of those values, and a
# request puts its values in the markers' places. The first request of a shape checks
# that this gives exactly what the ORM compiles for it; a shape that does not is
# compiled per request (never seen; tests/test_search_statements.py compares the two).

_USER_MARK = -(2**62)  # an id no row has, and no other parameter equals
_QUERY_MARK = {True: "\ue000_", False: "\ue000_\ue000"}  # 2 characters, or more
_PHONE_MARKS = ("\ue001", "\ue002", "\ue003")  # exact, digits, prefix
_compiled: dict[tuple, list[tuple[str, str, tuple]] | None] = {}


def _shape(source, index, user, query, phones, given, limit) -> tuple:
    return (
        source,  # frozen: its key, model and the fields searched (the hidden left out)
        index,
        given,
        limit,
        connection.alias,
        connection.vendor,
        access.data_scope(user),
        len(access.scope_department_ids(user)),
        len(query) == 2,
        len(BIGRAM_INDEXED),
        bool(phones.exact),
        bool(phones.digits),
        bool(phones.prefix),
    )


def _marked(user):
    """A copy of the user whose id and departments are markers (with its own state, so
    nothing the scope caches on it reaches the real user)."""
    marked = copy.copy(user)
    marked._state = copy.copy(user._state)
    marked._state.fields_cache = dict(user._state.fields_cache)
    marked.pk = _USER_MARK
    count = len(access.scope_department_ids(user))
    marked._scope_department_ids = frozenset(_USER_MARK + 1 + n for n in range(count))
    return marked


def _fill(statements, user, query, phones) -> list[tuple[str, str, tuple]]:
    """The marked statements with the request's values in the markers' places."""
    numbers = {_USER_MARK: user.pk}
    for n, department in enumerate(sorted(access.scope_department_ids(user))):
        numbers[_USER_MARK + 1 + n] = department
    mark = _QUERY_MARK[len(query) == 2]
    texts = {
        connection.ops.prep_for_like_query(mark): connection.ops.prep_for_like_query(query),
        mark: query,
        **dict(zip(_PHONE_MARKS, (phones.exact, phones.digits, phones.prefix), strict=True)),
    }
    pattern = re.compile("|".join(re.escape(t) for t in texts))  # escaped form first

    def value(param):
        if type(param) is int:
            return numbers.get(param, param)
        if type(param) is str:
            return pattern.sub(lambda m: texts[m.group()], param)
        return param

    return [(name, sql, tuple(value(p) for p in params)) for name, sql, params in statements]


def _compiled_statements(source, index, user, query, phones, given, limit):
    key = _shape(source, index, user, query, phones, given, limit)
    if key not in _compiled:
        fresh = _statements(source, index, user, query, phones, given, limit)
        marks = PhoneTerms(
            *(
                m if part else ""
                for m, part in zip(_PHONE_MARKS, dataclasses.astuple(phones), strict=True)
            )
        )
        mark = _QUERY_MARK[len(query) == 2]
        marked = _statements(source, index, _marked(user), mark, marks, given, limit)
        _compiled[key] = marked if _fill(marked, user, query, phones) == fresh else None
        return fresh
    marked = _compiled[key]
    if marked is None:
        return _statements(source, index, user, query, phones, given, limit)
    return _fill(marked, user, query, phones)


def _searched(source: SearchSource, user) -> SearchSource | None:
    """The source as the user may search it: None when their role may not view its
    type; a field hidden from the role is not searched (a match would reveal it)."""
    if not access.has_permission(user, source.record_type, "view"):
        return None
    hidden = access.hidden_fields(user, source.record_type)
    if not hidden:
        return source
    return dataclasses.replace(
        source,
        email_fields=tuple(f for f in source.email_fields if f not in hidden),
        phone_fields=tuple(f for f in source.phone_fields if f not in hidden),
    )


def _plan_source(source, index, user, query, phones, limit, given=False) -> _Planned | None:
    source = _searched(source, user)
    if source is None:
        return None
    statements = _compiled_statements(source, index, user, query, phones, given, limit)
    planned = _Planned(source, index, [], _rows_plan(source, index, limit, given))
    if given:
        *statements, (_name, sql, params) = statements
        planned.left_out = (sql, params)
    planned.ctes.extend(statements)
    return planned


_union_sql: dict[tuple, str] = {}


def _union(shown: list[_Planned], given: bool = False) -> str:
    """The rows part: each type's rows in its own columns (the others' NULL), after the
    type's index and its count (from its CTE; 0 when the ids are `given`)."""
    key = (given, *((p.index, p.plan) for p in shown))
    sql = _union_sql.get(key)
    if sql is None:
        parts = []
        for n, p in enumerate(shown):
            pads_before = [f"CAST(NULL AS {t})" for q in shown[:n] for t in q.plan.cast_types]
            pads_after = [f"CAST(NULL AS {t})" for q in shown[n + 1 :] for t in q.plan.cast_types]
            count = "0" if given else f"(SELECT COUNT(*) FROM search_m{p.index})"  # noqa: S608
            columns = ", ".join(
                [
                    f"{p.index} AS search_type",
                    f"{count} AS search_count",
                    *pads_before,
                    f"s{n}.*",
                    *pads_after,
                ]
            )
            parts.append(f"SELECT {columns} FROM ({p.plan.sql}) s{n}")  # noqa: S608
        sql = " UNION ALL ".join(parts)
        _union_sql[key] = sql
    return sql


# PostgreSQL settings for the search's own transaction (SET LOCAL ends with it):
# - no parallel workers. Each part reads at most CAP + 1 ids or a page of rows; starting
#   workers for one cost more than the query (at 1M customers: 44 ms for a contact
#   search that found nothing) and takes CPUs other requests need.
# - joins as nested loops. The only join is a contact's customer, whose owner says
#   whether the contact is visible: probed by primary key for each contact found, it
#   stops at CAP + 1 visible ones. The planner otherwise hashed every customer in a
#   manager's scope to check 232 contacts (王伟 at 100k: 84,762 customers read, 21 ms of
#   the statement's 27; 4.4 ms with the probes) — at 1M ten times as many.
_SEARCH_SETTINGS = (
    "SET LOCAL max_parallel_workers_per_gather = 0",
    "SET LOCAL enable_hashjoin = off",
    "SET LOCAL enable_mergejoin = off",
)
_SEARCH_DEFAULTS = tuple(f"{s.split(' = ')[0]} TO DEFAULT" for s in _SEARCH_SETTINGS)
_SETTINGS_SQL = "; ".join(_SEARCH_SETTINGS)
_DEFAULTS_SQL = "; ".join(_SEARCH_DEFAULTS)


def _with(planned: list[_Planned]) -> tuple[str, list]:
    ctes, params = [], []
    for p in planned:
        for name, sql, cte_params in p.ctes:
            ctes.append(f"{name} AS MATERIALIZED ({sql})")
            params.extend(cte_params)
    return f"WITH {', '.join(ctes)}", params


def _two_phases() -> bool:
    """PostgreSQL outside a transaction, parameters bound on the client (psycopg2;
    psycopg's default): in one REPEATABLE READ transaction, the ids of every type in one
    statement, the exact matches the cap left out of the capped types (only when one
    was), then the rows of the types that found any. PostgreSQL plans these in about
    half the time of the one statement (which plans every type's rows and left-out
    query, found or not: a rare word spent 6-9 ms planning it, against 1.6 ms for the
    per-type queries before), and the one snapshot shows the rows exactly as the first
    statement found them in the user's scope. Elsewhere (SQLite; inside atomic(), where
    the isolation is already set): the one statement."""
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()
        and not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    )


def _run(planned: list[_Planned]) -> tuple[list[_Planned], list[tuple]]:
    """The one statement: (the types it shows, its rows)."""
    with_sql, params = _with(planned)
    statement = f"{with_sql} {_union(planned)}"
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return planned, cursor.fetchall()
    if not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        # Both statements in one message, which PostgreSQL runs as one transaction (an
        # implicit one outside atomic()), so SET LOCAL holds for the search and ends
        # with it: one round trip rather than BEGIN, SET, the query and COMMIT.
        with connection.cursor() as cursor:
            cursor.execute(f"{_SETTINGS_SQL}; {statement}", params)
            rows = cursor.fetchall()
            if connection.in_atomic_block:  # the caller's transaction goes on: as it was
                cursor.execute(_DEFAULTS_SQL)
            return planned, rows
    outer = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in _SEARCH_SETTINGS:  # one statement per call when bound on the server
            cursor.execute(setting)
        cursor.execute(statement, params)
        rows = cursor.fetchall()
        if outer:  # the caller's transaction goes on: as it was
            for setting in _SEARCH_DEFAULTS:
                cursor.execute(setting)
        return planned, rows


def _run_two_phases(planned: list[_Planned]) -> tuple[list[_Planned], list[tuple]]:
    with_sql, params = _with(planned)
    ids_sql = " UNION ALL ".join(
        f"SELECT {p.index}, id, r FROM search_m{p.index}"  # noqa: S608
        for p in planned
    )
    by_index = {p.index: p for p in planned}
    with transaction.atomic(), connection.cursor() as cursor:
        # 1. The ids of each type's matches (at most CAP + 1), and which are exact.
        cursor.execute(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; "
            f"{_SETTINGS_SQL}; {with_sql} {ids_sql}",
            params,
        )
        for index, pk, rank in cursor.fetchall():
            p = by_index[index]
            p.ids.append(pk)
            if rank == 0:
                p.exact.append(pk)
        for p in planned:
            p.count = len(p.ids)
        # 2. Where the cap was reached: the exact matches it may have left out.
        capped = [p for p in planned if p.count > CAP]
        if capped:
            parts, left_params = [], []
            for p in capped:
                sql, left_out_params = p.left_out
                parts.append(f"SELECT {p.index}, s{p.index}.* FROM ({sql}) s{p.index}")  # noqa: S608
                left_params.extend(left_out_params)
            cursor.execute(" UNION ALL ".join(parts), left_params)
            for index, pk in cursor.fetchall():
                p = by_index[index]
                p.ids.append(pk)
                p.exact.append(pk)
        # 3. The rows shown, of the types that found any, as the same snapshot has them.
        shown = [p for p in planned if p.ids]
        if not shown:
            return [], []
        rows_params = []
        for p in shown:
            lists = {"ids": list(dict.fromkeys(p.ids)), "exact": list(dict.fromkeys(p.exact))}
            rows_params.extend(lists[slot] for slot in p.plan.slots)
        cursor.execute(_union(shown, given=True), rows_params)
        return shown, cursor.fetchall()


def _groups(
    planned: list[_Planned], shown: list[_Planned], rows: list[tuple], query: str, given: bool
) -> list[SearchGroup]:
    db = connection.alias
    offsets, offset = {}, 2
    for p in shown:
        offsets[p.index] = offset
        offset += len(p.plan.cast_types)
    by_type: dict[int, list[tuple]] = {}
    for row in rows:
        by_type.setdefault(row[0], []).append(row)
    groups = []
    for p in planned:
        found = by_type.get(p.index, [])
        source, plan = p.source, p.plan
        url = _url_maker(source.detail_url)
        parent_field, parent_url = source.parent or ("", "")
        parent = _url_maker(parent_url)
        parent_attname = source.model._meta.get_field(parent_field).attname if parent_field else ""
        hits = []
        if found:
            start = offsets[p.index]
            width = len(plan.cast_types)
        for row in found:
            values = list(row[start : start + width])
            for position, (converters, expression) in plan.converters.items():
                value = values[position]
                for converter in converters:
                    value = converter(value, expression, connection)
                values[position] = value
            record = _instance(plan.root, values, db)
            hits.append(
                SearchHit(
                    record,
                    url(record.pk),
                    parent(getattr(record, parent_attname)) if parent_field else "",
                )
            )
        count = p.count if given else (found[0][1] if found else 0)
        more_url = ""
        if count > len(hits) and source.list_url:
            base = _url(source.list_url)
            more_url = f"{base}?{urlencode({'q': query})}" if base else ""
        groups.append(SearchGroup(source=source, hits=hits, count=count, more_url=more_url))
    return groups


def _search_sources(sources_, user, query, phones, limit) -> list[SearchGroup]:
    given = _two_phases()
    planned = []
    for index, source in enumerate(sources_):
        p = _plan_source(source, index, user, query, phones, limit, given)
        if p is not None:
            planned.append(p)
    if not planned:
        return []
    shown, rows = _run_two_phases(planned) if given else _run(planned)
    return _groups(planned, shown, rows, query, given)


def search_source(
    source: SearchSource, user, query: str, *, limit: int = LIMIT, phones: PhoneTerms | None = None
) -> SearchGroup | None:
    """Matches of one record type: None when the user's role may not view that type."""
    phones = phone_terms(query) if phones is None else phones
    groups = _search_sources([source], user, query, phones, limit)
    return groups[0] if groups else None


def search(user, raw_query, *, limit: int = LIMIT) -> SearchResults:
    """Customers, contacts (and every registered type) the user may see that match:
    one query for them all."""
    query = clean_query(raw_query)
    if not query:
        return SearchResults(query="")
    if len(query) < MIN_LENGTH:
        message = gettext("Type at least %(count)d characters to search.") % {"count": MIN_LENGTH}
        return SearchResults(query=query, message=message)
    phones = phone_terms(query)
    groups = _search_sources(sources(), user, query, phones, limit)
    return SearchResults(query=query, groups=groups, searched=True)
