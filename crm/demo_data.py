"""Realistic Chinese sample data: company and person names, phones, emails, addresses.

Shared by the demo seed and the benchmark generator (bench/generate.py). Every
function takes a `random.Random` so the output is deterministic for a given seed:

    rng = random.Random(42)
    company = make_company(rng)    # Company(name="上海恒信机械设备有限公司", ...)
    person_name(rng)               # "王丽娟"
    mobile(rng)                    # "+8613912345678" (E.164, the stored form)
    email(rng, person="王丽娟", domain=company.domain)   # "wanglijuan@hengxin-jx.com"

Phones come back in the stored E.164 form; industry codes, activity kinds and levels
are the codes of the default data dictionaries (crm/migrations/0002).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

# --- Places -----------------------------------------------------------------------------

# The tables below are data: kept dense on purpose.
# fmt: off

# city, pinyin, area code, districts, roads
CITIES: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]] = [
    ("上海", "sh", "21", ("浦东新区", "闵行区", "徐汇区", "静安区", "嘉定区", "松江区"),
     ("张江路", "世纪大道", "漕宝路", "南京西路", "曹安公路", "九亭大街")),
    ("北京", "bj", "10", ("海淀区", "朝阳区", "丰台区", "大兴区", "昌平区", "东城区"),
     ("中关村大街", "建国路", "丰台科技园路", "亦庄荣华路", "回龙观西大街", "东直门外大街")),
    ("深圳", "sz", "755", ("南山区", "福田区", "宝安区", "龙岗区", "龙华区"),
     ("科技园南路", "深南大道", "宝安大道", "布吉路", "民治大道")),
    ("广州", "gz", "20", ("天河区", "番禺区", "白云区", "黄埔区", "海珠区"),
     ("天河路", "市桥大道", "白云大道", "科学大道", "新港东路")),
    ("杭州", "hz", "571", ("西湖区", "滨江区", "余杭区", "萧山区", "拱墅区"),
     ("文三路", "江南大道", "文一西路", "市心北路", "莫干山路")),
    ("苏州", "su", "512", ("工业园区", "吴中区", "相城区", "姑苏区", "昆山市"),
     ("星湖街", "东吴北路", "阳澄湖大道", "人民路", "前进西路")),
    ("南京", "nj", "25", ("鼓楼区", "江宁区", "建邺区", "玄武区", "浦口区"),
     ("中山北路", "双龙大道", "江东中路", "珠江路", "浦珠路")),
    ("成都", "cd", "28", ("高新区", "武侯区", "锦江区", "成华区", "双流区"),
     ("天府大道", "武侯祠大街", "春熙路", "建设路", "航空港大道")),
    ("武汉", "wh", "27", ("洪山区", "江汉区", "武昌区", "东湖高新区", "汉阳区"),
     ("珞喻路", "解放大道", "中北路", "光谷大道", "汉阳大道")),
    ("西安", "xa", "29", ("雁塔区", "碑林区", "未央区", "长安区"),
     ("科技路", "南大街", "凤城八路", "长安南路")),
    ("天津", "tj", "22", ("和平区", "南开区", "滨海新区", "西青区"),
     ("南京路", "鞍山西道", "第二大街", "津淄公路")),
    ("重庆", "cq", "23", ("渝中区", "江北区", "九龙坡区", "渝北区"),
     ("解放碑步行街", "观音桥步行街", "杨家坪正街", "金开大道")),
    ("宁波", "nb", "574", ("鄞州区", "江北区", "北仑区", "海曙区"),
     ("天童南路", "人民路", "明州路", "中山西路")),
    ("青岛", "qd", "532", ("市南区", "崂山区", "黄岛区", "李沧区"),
     ("香港中路", "株洲路", "长江中路", "九水东路")),
    ("厦门", "xm", "592", ("思明区", "湖里区", "集美区", "海沧区"),
     ("湖滨南路", "枋湖路", "杏林湾路", "海沧大道")),
    ("长沙", "cs", "731", ("岳麓区", "开福区", "雨花区", "天心区"),
     ("麓谷大道", "芙蓉中路", "韶山南路", "湘府路")),
    ("郑州", "zz", "371", ("金水区", "二七区", "郑东新区", "高新区"),
     ("花园路", "大学路", "商务外环路", "科学大道")),
    ("合肥", "hf", "551", ("蜀山区", "包河区", "高新区", "庐阳区"),
     ("长江西路", "徽州大道", "望江西路", "阜阳路")),
    ("无锡", "wx", "510", ("滨湖区", "新吴区", "梁溪区", "锡山区"),
     ("蠡湖大道", "长江路", "中山路", "锡沪路")),
    ("佛山", "fs", "757", ("南海区", "顺德区", "禅城区"),
     ("桂城南海大道", "大良德和路", "季华路")),
    ("东莞", "dg", "769", ("南城街道", "长安镇", "松山湖", "虎门镇"),
     ("鸿福路", "长安中路", "工业东路", "连升路")),
    ("济南", "jn", "531", ("历下区", "高新区", "槐荫区", "市中区"),
     ("经十路", "舜华路", "经七路", "英雄山路")),
]
CITY_WEIGHTS = [14, 12, 10, 9, 8, 7, 6, 6, 5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3, 2]
# fmt: on

# --- Company names ----------------------------------------------------------------------

# Characters two of which make a brand (恒信, 华盛, 鼎泰...), with their pinyin for domains.
# fmt: off
BRAND_CHARS: dict[str, str] = {
    "恒": "heng", "信": "xin", "华": "hua", "盛": "sheng", "鼎": "ding", "泰": "tai",
    "宏": "hong", "达": "da", "金": "jin", "源": "yuan", "瑞": "rui", "丰": "feng",
    "永": "yong", "嘉": "jia", "诚": "cheng", "汇": "hui", "通": "tong", "中": "zhong",
    "联": "lian", "天": "tian", "成": "cheng", "博": "bo", "远": "yuan", "新": "xin",
    "拓": "tuo", "正": "zheng", "阳": "yang", "德": "de", "润": "run", "明": "ming",
    "安": "an", "佳": "jia", "创": "chuang", "兴": "xing", "鑫": "xin", "隆": "long",
    "祥": "xiang", "凯": "kai", "锦": "jin", "昌": "chang", "富": "fu", "康": "kang",
    "益": "yi", "海": "hai", "科": "ke", "睿": "rui", "卓": "zhuo", "越": "yue",
    "启": "qi", "航": "hang", "弘": "hong", "毅": "yi", "聚": "ju", "力": "li",
}
# fmt: on
_BRAND_LIST = list(BRAND_CHARS)

# industry words in a name -> (industry dictionary code, short pinyin for domains)
INDUSTRY_WORDS: list[tuple[str, str, str]] = [
    ("机械设备", "manufacturing", "jx"),
    ("精密机械", "manufacturing", "jm"),
    ("电子科技", "manufacturing", "dz"),
    ("汽车配件", "manufacturing", "qp"),
    ("包装材料", "manufacturing", "bz"),
    ("化工", "manufacturing", "hg"),
    ("新材料", "manufacturing", "xcl"),
    ("智能装备", "manufacturing", "zn"),
    ("信息技术", "internet", "it"),
    ("网络科技", "internet", "net"),
    ("软件", "internet", "soft"),
    ("数据科技", "internet", "data"),
    ("贸易", "retail", "trade"),
    ("商贸", "retail", "sm"),
    ("进出口", "retail", "ie"),
    ("服饰", "retail", "fs"),
    ("家居用品", "retail", "home"),
    ("教育科技", "education", "edu"),
    ("培训", "education", "px"),
    ("医疗器械", "healthcare", "med"),
    ("生物科技", "healthcare", "bio"),
    ("医药", "healthcare", "yy"),
    ("投资管理", "finance", "tz"),
    ("融资租赁", "finance", "zl"),
    ("房地产开发", "real_estate", "dc"),
    ("物业管理", "real_estate", "wy"),
    ("物流", "logistics", "wl"),
    ("供应链管理", "logistics", "scm"),
    ("环保科技", "government", "hb"),
    ("新能源", "government", "ny"),
    ("食品", "food", "food"),
    ("餐饮管理", "food", "cy"),
]

# Plain 有限公司 is the most common form.
COMPANY_SUFFIXES = ["有限公司"] * 3 + ["股份有限公司", "集团有限公司", "有限责任公司"]


@dataclass(frozen=True)
class Company:
    name: str  # 上海恒信机械设备有限公司
    city: str  # 上海
    brand: str  # 恒信
    industry: str  # dictionary code, e.g. "manufacturing"
    domain: str  # hengxin-jx.com


def make_company(rng: random.Random) -> Company:
    """A company: city + brand + industry words + suffix, with its industry and web domain."""
    city = rng.choices(CITIES, weights=CITY_WEIGHTS)[0]
    first, second = rng.sample(_BRAND_LIST, 2)
    brand = first + second
    word, industry, short = rng.choice(INDUSTRY_WORDS)
    suffix = rng.choice(COMPANY_SUFFIXES)
    tld = rng.choice((".com", ".com", ".cn", ".com.cn"))
    domain = f"{BRAND_CHARS[first]}{BRAND_CHARS[second]}-{short}{tld}"
    return Company(
        name=f"{city[0]}{brand}{word}{suffix}",
        city=city[0],
        brand=brand,
        industry=industry,
        domain=domain,
    )


def company_name(rng: random.Random) -> str:
    """E.g. 上海恒信机械设备有限公司."""
    return make_company(rng).name


# --- People -----------------------------------------------------------------------------

# The most common surnames, roughly by frequency, with pinyin.
# fmt: off
SURNAMES: list[tuple[str, str, int]] = [
    ("王", "wang", 72), ("李", "li", 71), ("张", "zhang", 68), ("刘", "liu", 54),
    ("陈", "chen", 46), ("杨", "yang", 32), ("黄", "huang", 25), ("赵", "zhao", 20),
    ("吴", "wu", 19), ("周", "zhou", 19), ("徐", "xu", 15), ("孙", "sun", 15),
    ("马", "ma", 14), ("朱", "zhu", 13), ("胡", "hu", 12), ("郭", "guo", 11),
    ("何", "he", 10), ("高", "gao", 10), ("林", "lin", 10), ("罗", "luo", 10),
    ("郑", "zheng", 9), ("梁", "liang", 9), ("谢", "xie", 8), ("宋", "song", 7),
    ("唐", "tang", 7), ("许", "xu", 7), ("韩", "han", 7), ("冯", "feng", 6),
    ("邓", "deng", 6), ("曹", "cao", 6), ("彭", "peng", 6), ("曾", "zeng", 6),
    ("肖", "xiao", 5), ("田", "tian", 5), ("董", "dong", 5), ("袁", "yuan", 5),
    ("潘", "pan", 4), ("于", "yu", 4), ("蒋", "jiang", 4), ("蔡", "cai", 4),
    ("余", "yu", 4), ("杜", "du", 4), ("叶", "ye", 4), ("程", "cheng", 4),
    ("苏", "su", 3), ("魏", "wei", 3), ("吕", "lv", 3), ("丁", "ding", 3),
    ("任", "ren", 3), ("沈", "shen", 3), ("姚", "yao", 3), ("卢", "lu", 3),
    ("欧阳", "ouyang", 1), ("司马", "sima", 1),
]
# fmt: on
_SURNAME_WEIGHTS = [w for _, _, w in SURNAMES]

# fmt: off
GIVEN_CHARS: dict[str, str] = {
    "伟": "wei", "芳": "fang", "娜": "na", "敏": "min", "静": "jing", "丽": "li",
    "强": "qiang", "磊": "lei", "军": "jun", "洋": "yang", "勇": "yong", "艳": "yan",
    "杰": "jie", "娟": "juan", "涛": "tao", "明": "ming", "超": "chao", "秀": "xiu",
    "霞": "xia", "平": "ping", "刚": "gang", "桂": "gui", "英": "ying", "华": "hua",
    "玉": "yu", "兰": "lan", "建": "jian", "国": "guo", "文": "wen", "辉": "hui",
    "鹏": "peng", "宇": "yu", "浩": "hao", "欣": "xin", "婷": "ting", "雪": "xue",
    "琳": "lin", "晨": "chen", "佳": "jia", "慧": "hui", "梅": "mei", "萍": "ping",
    "志": "zhi", "红": "hong", "海": "hai", "波": "bo", "斌": "bin", "宁": "ning",
    "俊": "jun", "凯": "kai", "晓": "xiao", "丹": "dan", "倩": "qian", "颖": "ying",
    "博": "bo", "睿": "rui", "泽": "ze", "思": "si", "雨": "yu", "涵": "han",
    "子": "zi", "怡": "yi", "梓": "zi", "轩": "xuan", "嘉": "jia", "琪": "qi",
    "天": "tian", "成": "cheng", "小": "xiao", "春": "chun", "亮": "liang", "飞": "fei",
    "彬": "bin", "璐": "lu", "蕾": "lei", "瑶": "yao", "旭": "xu", "东": "dong",
}
# fmt: on
_GIVEN_LIST = list(GIVEN_CHARS)
_PINYIN = {s: p for s, p, _ in SURNAMES} | GIVEN_CHARS


@dataclass(frozen=True)
class Person:
    name: str  # 王丽娟
    pinyin: str  # wanglijuan


def make_person(rng: random.Random) -> Person:
    """A person's name: a common surname and one or two given-name characters."""
    surname = rng.choices(SURNAMES, weights=_SURNAME_WEIGHTS)[0]
    given = rng.choice(_GIVEN_LIST)
    if rng.random() < 0.6:
        given += rng.choice(_GIVEN_LIST)
    return Person(name=surname[0] + given, pinyin=pinyin(surname[0] + given))


def person_name(rng: random.Random) -> str:
    """E.g. 王伟, 李丽娟."""
    return make_person(rng).name


def pinyin(name: str) -> str:
    """Pinyin (without tones) of a name made by this module; unknown characters are dropped."""
    if name[:2] in _PINYIN:
        return _PINYIN[name[:2]] + pinyin(name[2:])
    return "".join(_PINYIN.get(ch, "") for ch in name)


# fmt: off
JOB_TITLES = [
    "总经理", "副总经理", "董事长", "采购经理", "采购专员", "采购总监", "技术总监",
    "技术工程师", "项目经理", "财务经理", "财务主管", "行政主管", "销售总监",
    "市场经理", "运营总监", "IT 主管", "生产经理", "质量经理", "办公室主任", "总经理助理",
]
# fmt: on

# --- Phones and emails ------------------------------------------------------------------

# fmt: off
MOBILE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "198", "199",
]
# fmt: on


def mobile(rng: random.Random) -> str:
    """A CN mobile number in the stored E.164 form, e.g. +8613912345678."""
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def landline(rng: random.Random, city: str | None = None) -> str:
    """A CN fixed-line number of the city (E.164), e.g. +862158881234."""
    row = next((c for c in CITIES if c[0] == city), None) or rng.choice(CITIES)
    rest = 6 if row[2] == "592" else 7  # Xiamen still has 7-digit local numbers
    return f"+86{row[2]}{rng.choice('234567')}{rng.randrange(10**rest):0{rest}d}"


PUBLIC_MAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "139.com", "foxmail.com"]


def email(rng: random.Random, person: str | Person | None = None, domain: str | None = None) -> str:
    """An email address: of a person (pinyin of the name) at `domain` or a public mail
    provider, or, without a person, a company role address (sales@, info@...)."""
    if person is None:
        local = rng.choice(("info", "sales", "contact", "service", "office", "hr"))
        return f"{local}@{domain or rng.choice(PUBLIC_MAIL_DOMAINS)}"
    spelled = person.pinyin if isinstance(person, Person) else pinyin(person)
    if domain is None or rng.random() < 0.3:
        provider = rng.choice(PUBLIC_MAIL_DOMAINS)
        if provider == "qq.com" or not spelled:
            return f"{rng.randrange(10**7, 10**10)}@qq.com"
        return f"{spelled}{rng.randrange(1, 999)}@{provider}"
    local = spelled if rng.random() < 0.7 else f"{spelled}{rng.randrange(10, 99)}"
    return f"{local}@{domain}"


def address(rng: random.Random, city: str | None = None) -> str:
    """E.g. 上海市浦东新区张江路 1188 号 3 幢 502 室."""
    row = next((c for c in CITIES if c[0] == city), None) or rng.choice(CITIES)
    name, _py, _area, districts, roads = row
    text = f"{name}市{rng.choice(districts)}{rng.choice(roads)}{rng.randrange(1, 2000)}号"
    if rng.random() < 0.5:
        text += f"{rng.randrange(1, 12)}幢{rng.randrange(1, 30)}{rng.randrange(1, 20):02d}室"
    return text


def website(company: Company) -> str:
    return f"https://www.{company.domain}"


# --- What reps write --------------------------------------------------------------------

PRODUCTS = ["标准版系统", "企业版套餐", "年度服务合同", "定制化方案", "设备维保服务", "新品试用"]

ACTIVITY_TEMPLATES: dict[str, list[str]] = {
    "call": [
        "电话沟通{product}的报价，客户表示需要内部讨论后回复。",
        "给{contact}打电话确认需求，对方希望下周安排演示。",
        "电话回访，客户对{product}比较满意，询问付款方式。",
        "电话未接通，稍后再联系。",
        "与{contact}电话沟通合同条款，价格还有分歧。",
    ],
    "visit": [
        "上门拜访{contact}，参观了生产线，介绍了{product}。",
        "拜访客户，了解到今年有扩产计划，预算在审批中。",
        "到客户现场处理问题，{contact}对响应速度表示认可。",
    ],
    "meeting": [
        "与{contact}及技术团队开会，确认了{product}的实施范围。",
        "参加客户季度评审会，讨论续约事宜。",
        "线上会议演示{product}，对方提出了三点改进建议。",
    ],
    "email": [
        "发送{product}报价单给{contact}。",
        "邮件发送合同草案，等待法务审核。",
        "邮件回复客户关于交付周期的问题。",
    ],
    "wechat": [
        "微信发送产品资料给{contact}。",
        "微信沟通到货时间，客户催促尽快发货。",
        "{contact}在微信上咨询{product}的优惠政策。",
    ],
    "note": [
        "客户决策人是{contact}，采购流程需要三方比价。",
        "竞争对手也在接触该客户，注意价格策略。",
        "客户付款及时，信用良好。",
    ],
}
# How often reps log each kind (codes of the activity_kind dictionary).
ACTIVITY_KIND_WEIGHTS = {
    "call": 40, "wechat": 20, "visit": 12, "email": 12, "meeting": 8, "note": 8,
}  # fmt: skip

TASK_TITLES = [
    "回访{customer}",
    "给{contact}发送报价单",
    "准备{customer}的合同",
    "跟进{customer}付款进度",
    "安排{product}演示",
    "确认{customer}的需求清单",
]

TAG_NAMES = ["重点跟进", "老客户", "展会线索", "有预算", "竞品客户", "需要报价", "已签约", "VIP"]


def activity_kind(rng: random.Random) -> str:
    kinds = list(ACTIVITY_KIND_WEIGHTS)
    return rng.choices(kinds, weights=[ACTIVITY_KIND_WEIGHTS[k] for k in kinds])[0]


def activity_content(rng: random.Random, kind: str, contact: str = "") -> str:
    """What a rep writes after a call, visit... `contact` names the person talked to."""
    text = rng.choice(ACTIVITY_TEMPLATES.get(kind) or ACTIVITY_TEMPLATES["note"])
    return text.format(contact=contact or "对方负责人", product=rng.choice(PRODUCTS))


def task_title(rng: random.Random, customer: str = "", contact: str = "") -> str:
    text = rng.choice(TASK_TITLES)
    return text.format(
        customer=customer or "客户", contact=contact or "联系人", product=rng.choice(PRODUCTS)
    )


def moment_between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A time between start and end, during office hours on a weekday most of the time."""
    span = (end - start).total_seconds()
    moment = start + timedelta(seconds=rng.random() * span)
    if moment.weekday() >= 5 and rng.random() < 0.85:
        moment -= timedelta(days=moment.weekday() - 4)
    hour = rng.choices(range(8, 20), weights=[2, 8, 10, 9, 4, 6, 9, 10, 8, 5, 2, 1])[0]
    moment = moment.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
    return max(start, min(moment, end))
