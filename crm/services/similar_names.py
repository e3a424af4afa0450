"""Company names as people type them: 上海航启医疗, 航启医疗器械 and 上海航启医疗器械有限公司
are one company. For the duplicate warning (`crm.services.customers.find_duplicates`).

- `company_core(name)`: the name without what people leave out or add — the legal form
  (有限公司, 股份有限公司, 有限责任公司, 集团, Co., Ltd.), a region in front (上海, 广东省,
  深圳市, 中国) or in brackets (航启（上海）医疗), spaces and punctuation, full-width forms.
- `name_similarity(a, b)`: how alike two cores are, 0 to 1: one at the start of the
  other scores high (航启医疗 of 航启医疗器械), else, for cores that start alike, the
  overlap of their character pairs (航启医疗器材, 航启医疗器械).
- `similar_names(queryset, name)`: the closest few records by name. On PostgreSQL the
  candidates come through the trigram index on UPPER(name) (pg_trgm word similarity, and
  LIKE for a core inside a longer name); elsewhere through LIKE on the core and its
  three-character pieces. Either way they are ranked here, by `name_similarity`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.db import connections, transaction
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Upper

from .search import icontains_q

# Legal forms and the like at the end of a Chinese name, longest first.
SUFFIXES = (
    "集团股份有限公司",
    "集团有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "有限合伙",
    "总公司",
    "公司",
    "集团",
)
# The same words of a Latin-script name (Acme Co., Ltd.; ACME Inc.), dropped at its end.
LATIN_SUFFIXES = frozenset(
    {"co", "company", "corp", "corporation", "inc", "incorporated", "ltd", "limited", "llc"}
    | {"plc", "gmbh", "group"}
)
_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9]")

_PROVINCES = """
北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北
湖南 广东 海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门
"""
_CITIES = """
广州 深圳 杭州 南京 苏州 成都 武汉 西安 青岛 厦门 宁波 大连 沈阳 长沙 郑州 济南 合肥
福州 昆明 哈尔滨 长春 石家庄 太原 南昌 南宁 贵阳 兰州 海口 乌鲁木齐 呼和浩特 银川 西宁
拉萨 无锡 东莞 佛山 珠海 温州 常州 烟台 泉州 绍兴 嘉兴 金华 台州 徐州 南通 扬州 唐山
惠州 中山 潍坊 洛阳 保定 廊坊 芜湖 三亚
"""
PROVINCES, CITIES = tuple(_PROVINCES.split()), tuple(_CITIES.split())
# A region, with what may follow it: 广东省, 深圳市, 广西壮族自治区, 香港特别行政区.
_REGION = re.compile(
    "^(?:中国|(?:{})(?:省|市|(?:壮族|回族|维吾尔)?自治区|特别行政区)?)".format(
        "|".join(sorted(PROVINCES + CITIES, key=len, reverse=True))
    )
)
_BRACKETED = re.compile(r"\(([^()]*)\)")
_PUNCTUATION = re.compile(r"[\s\-_·・.,，。、&＆'\"“”‘’/\\()（）\[\]【】《》<>]+")


def _fold(name: str) -> str:
    """Full-width forms to their usual ones, lower case."""
    return unicodedata.normalize("NFKC", name or "").lower().strip()


def _strip_suffixes(name: str) -> str:
    changed = True
    while changed and name:
        changed = False
        for suffix in SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)].rstrip(" ,.-")
                changed = True
                break
    return name


def _strip_latin_suffixes(name: str) -> str:
    tokens = _WORDS.findall(name)
    while tokens and (tokens[-1] in LATIN_SUFFIXES or _PUNCTUATION.fullmatch(tokens[-1])):
        if tokens[-1] in LATIN_SUFFIXES and not any(t.isalnum() for t in tokens[:-1]):
            break  # "Group" alone stays
        tokens.pop()
    return "".join(tokens)


def _strip_regions(name: str) -> str:
    while True:
        match = _REGION.match(name)
        if not match or match.end() >= len(name):  # a name that is only a region stays
            return name
        name = name[match.end() :]


def company_core(name: str) -> str:
    """The part of a company name that tells it apart: 上海航启医疗器械有限公司 → 航启医疗器械."""
    name = _fold(name)

    def bracketed(match: re.Match) -> str:
        inner = match.group(1).strip()
        # (上海), (集团), (中国) are dropped; anything else stays, without the brackets.
        stripped = _strip_suffixes(_strip_regions(inner)) if inner else ""
        return "" if not inner or _REGION.fullmatch(inner) or inner in SUFFIXES else stripped

    name = _BRACKETED.sub(bracketed, name)
    name = _strip_latin_suffixes(name)
    name = _PUNCTUATION.sub("", name)
    name = _strip_suffixes(name)
    name = _strip_regions(name)
    return _strip_suffixes(name)


def _pairs(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else {text}


def name_similarity(a: str, b: str) -> float:
    """How alike two names are, from 0 to 1, compared by their cores."""
    a, b = company_core(a), company_core(b)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    short, long = sorted((a, b), key=len)
    score = 0.0
    if a[:2] == b[:2]:
        # The same start (a company's own name comes first): the overlap of their
        # character pairs, so 航启医疗器材 is like 航启医疗器械, 中卓精密机械 not like
        # 正卓精密机械 (another company of the same trade).
        first, second = _pairs(a), _pairs(b)
        score = 2 * len(first & second) / (len(first) + len(second))
    # One inside the other: 航启医疗 at the start of 航启医疗器械 scores high; inside it
    # (医疗器械 in 倰衰医疗器械, the trade only) less; two characters only at the start.
    if long.startswith(short):
        score = max(score, 0.6 + 0.4 * len(short) / len(long))
    elif len(short) >= 3 and short in long:
        score = max(score, 0.5 + 0.4 * len(short) / len(long))
    return score


# A candidate must be at least this alike to be shown (华瑞医疗器械 and 航启医疗器械,
# sharing only the trade, score 0.6; 航启医疗器材 and 航启医疗器械 0.8); the few closest are.
THRESHOLD = 0.8
# pg_trgm's word similarity for a candidate (its default, 0.6, misses 航启医疗器材 for
# 上海航启医疗器械有限公司); the ranking above has the last word.
TRIGRAM_THRESHOLD = 0.3
CANDIDATES = 50


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def postgres_candidates(queryset: QuerySet, core: str, field: str = "name") -> QuerySet:
    """Names like the core word by word: UPPER(name) %> UPPER(core), pg_trgm's word
    similarity, served by the trigram index on UPPER(name). Unordered: a generic core
    (医疗器械) matches thousands, and ranking them all costs more than reading a few;
    `closest` ranks what comes. Run it in a transaction that set the threshold
    (`_postgres_candidates`)."""
    return queryset.filter(TrigramWordSimilar(Upper(field), Upper(Value(core)))).order_by()


def _postgres_candidates(queryset: QuerySet, field: str, core: str) -> list:
    """The names holding the core first (LIKE through the trigram index, or the bigram
    index for 2 characters), then those like it."""
    found = list(
        queryset.filter(icontains_q(queryset.model, field, core)).order_by()[: CANDIDATES * 2]
    )
    with transaction.atomic(using=queryset.db):
        with connections[queryset.db].cursor() as cursor:
            # For this transaction only: the threshold of the index-backed %> operator.
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)",
                [str(TRIGRAM_THRESHOLD)],
            )
        alike = postgres_candidates(queryset.exclude(pk__in=[r.pk for r in found]), core, field)
        return found + list(alike[: CANDIDATES * 2])


def _pieces(core: str) -> list[str]:
    """The core, or its three-character pieces (a few, spread over it) for a long one."""
    if len(core) <= 3:
        return [core]
    pieces = [core[i : i + 3] for i in range(len(core) - 2)]
    step = max(1, len(pieces) // 4)
    return pieces[::step][:5]


def _fallback_candidates(queryset: QuerySet, field: str, core: str) -> list:
    """The names holding the core first, then those sharing a piece of it."""
    found = list(queryset.filter(**{f"{field}__icontains": core})[:CANDIDATES])
    condition = Q()
    for piece in _pieces(core):
        condition |= Q(**{f"{field}__icontains": piece})
    others = queryset.filter(condition).exclude(pk__in=[r.pk for r in found])
    return found + list(others[: CANDIDATES * 4])


def similar_names(
    queryset: QuerySet, name: str, *, field: str = "name", limit: int = 5
) -> list[tuple[object, float]]:
    """(record, similarity) of the records of `queryset` whose `field` is most like
    `name`, closest first, at most `limit`; an exact name scores 1."""
    core = company_core(name)
    if len(core) < 2:
        return []
    if connections[queryset.db].vendor == "postgresql":
        candidates = _postgres_candidates(queryset, field, core)
    else:
        candidates = _fallback_candidates(queryset, field, core)
    return closest(candidates, name, field=field, limit=limit)


def closest(
    records: Iterable, name: str, *, field: str = "name", limit: int = 5
) -> list[tuple[object, float]]:
    scored = [(record, name_similarity(name, getattr(record, field))) for record in records]
    scored = [(record, score) for record, score in scored if score >= THRESHOLD]
    scored.sort(key=lambda pair: (-pair[1], getattr(pair[0], field)))
    return scored[:limit]
