"""Every URL pattern the resolver knows, with its arguments, and the forms a page carries:
what the walks over the whole site (test_fuzz, test_outsider_walk) share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.urls import URLPattern, URLResolver, get_resolver

# --- URL patterns and their arguments ------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    parts: tuple[str, ...]  # literal text and "<converter:name>" in order


ARG = re.compile(r"(<(?:[^>:]+:)?[^>]+>|\(\?P<[^>]+>[^)]*\))")


def routes() -> list[Route]:
    """Every URL pattern the resolver knows (Django admin's too), by its namespaced name."""
    found = []

    def walk(resolver, prefix: str, namespace: str):
        for pattern in resolver.url_patterns:
            text = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                ns = pattern.namespace
                walk(pattern, text, f"{namespace}:{ns}" if namespace and ns else ns or namespace)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace else str(pattern.name)
                found.append(Route(name, tuple(p for p in ARG.split(text) if p)))

    walk(get_resolver(), "/", "")
    return found


def arg_name(part: str) -> str | None:
    """The argument's name where `part` is one ("<int:pk>" -> "pk"), else None."""
    match = re.fullmatch(r"<(?:[^>:]+:)?([^>]+)>|\(\?P<([^>]+)>[^)]*\)", part)
    return (match.group(1) or match.group(2)) if match else None


def arg_names(route: Route) -> list[str]:
    return [name for name in map(arg_name, route.parts) if name]


def build(route: Route, arguments: dict[str, str]) -> str | None:
    """The route's path with `arguments` filled in; None where one is missing."""
    path = []
    for part in route.parts:
        name = arg_name(part)
        if name is None:
            if any(ch in part for ch in "()[]*+?\\"):
                return None  # a regex without named groups: nothing to fill
            path.append(part)
        elif name in arguments:
            path.append(arguments[name])
        else:
            return None
    return "".join(path)


# --- Forms on a page ---------------------------------------------------------------------


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class FormParser(HTMLParser):
    """The forms of a page: method, action (or hx-post/hx-get) and fields with the value
    the page gives them (checked boxes, selected or first options, textarea text)."""

    def __init__(self, page_url: str):
        super().__init__()
        self.page_url = page_url
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.select: str | None = None
        self.select_first: str | None = None
        self.select_chosen = False
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            method = (
                "post" if (a.get("method") or "").lower() == "post" or "hx-post" in a else "get"
            )
            action = a.get("hx-post") or a.get("hx-get") or a.get("action") or self.page_url
            self.current = Form(method, action or self.page_url)
            self.forms.append(self.current)
            return
        if self.current is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a or name not in self.current.fields:
                    self.current.fields[name] = a.get("value") or "on"
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self.current.fields[name] = a.get("value") or ""
            elif kind == "submit":
                self.current.fields.setdefault(name, a.get("value") or "")
        elif tag == "button" and name:
            self.current.fields.setdefault(name, a.get("value") or "")
        elif tag == "select" and name:
            self.select, self.select_first, self.select_chosen = name, None, False
        elif tag == "option" and self.select:
            value = a.get("value", "")
            if self.select_first is None and value:
                self.select_first = value
            if "selected" in a:
                self.current.fields[self.select] = value
                self.select_chosen = True
        elif tag == "textarea" and name:
            self.textarea = name
            self.current.fields[name] = ""

    def handle_data(self, data):
        if self.current is not None and self.textarea:
            self.current.fields[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select" and self.select:
            if not self.select_chosen and self.current is not None:
                self.current.fields[self.select] = self.select_first or ""
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def forms_of(response, page_url: str) -> list[Form]:
    """The forms of an HTML response (none of any other)."""
    if "html" not in response.get("Content-Type", ""):
        return []
    parser = FormParser(page_url)
    parser.feed(response.content.decode(errors="replace"))
    return parser.forms
