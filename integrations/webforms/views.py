"""The public side of web forms: no sign-in, answered in the visitor's language
(Accept-Language). The POSTs come from other sites, so they are CSRF-exempt; what
guards them instead is services.submit's token, honeypot and duplicate checks, a rate
limit per IP address here, a size limit, and the form's allowed origins."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts import throttle

from . import catalogue, services, tokens
from .models import WebForm

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_limit() -> tuple[int, int]:
    """WEBFORMS_RATE_LIMIT ("10/min", "100/h", "5/10s"): submissions per IP and window."""
    match = _RATE.match(str(getattr(settings, "WEBFORMS_RATE_LIMIT", "10/min")))
    if not match:
        return 10, 60
    count, times, unit = match.groups()
    return int(count), int(times or 1) * _UNITS[unit[0]]


def max_bytes() -> int:
    return int(getattr(settings, "WEBFORMS_MAX_BYTES", 32 * 1024))


_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def active_form(key: str) -> WebForm:
    if not _KEY.fullmatch(key):
        raise Http404  # a NUL or other garbage never reaches the database
    form = (
        WebForm.objects.filter(key=key, is_active=True)
        .select_related("source", "stage__pipeline", "pipeline")
        .first()
    )
    if form is None:
        raise Http404
    return form


def urls(request: HttpRequest, form: WebForm) -> dict[str, str]:
    """The form's public addresses, absolute (the snippet runs on another site)."""

    def absolute(name: str) -> str:
        return request.build_absolute_uri(reverse(name, args=[form.key]))

    return {
        "page": absolute("webforms:page"),
        "embed": absolute("webforms:embed"),
        "submit": absolute("webforms:submit"),
        "api": absolute("webforms:api"),
    }


def field_rows(form: WebForm, values=None, errors=None) -> list[dict]:
    values, errors = values or {}, errors or {}
    rows = []
    for spec in services.form_fields(form):
        value = values.get(spec.name, "")
        rows.append(
            {
                "name": spec.name,
                "id": f"wf-{form.pk}-{spec.name}",
                "label": spec.display_label,
                "required": spec.required,
                "widget": catalogue.widget_of(spec.name),
                "value": value if isinstance(value, str) else "",
                "values": value if isinstance(value, list) else [value],
                "errors": errors.get(spec.name, []),
            }
        )
    return rows


def form_html(request, form: WebForm, *, token="", values=None, errors=None, utm=None) -> str:
    """The <form> itself: on the form's page, in the snippet and drawn by embed.js."""
    return render_to_string(
        "webforms/_form.html",
        {
            "form": form,
            "action": urls(request, form)["submit"],
            "rows": field_rows(form, values, errors),
            "non_field_errors": (errors or {}).get(services.NON_FIELD, []),
            "token": token,
            "token_field": tokens.FIELD,
            "honeypot": services.HONEYPOT,
            "utm": utm or {},
            "page_field": services.PAGE,
            "referrer_field": services.REFERRER,
        },
    )


# --- Origins (CORS) --------------------------------------------------------------------


def _own_origin(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def origin_allowed(request: HttpRequest, form: WebForm) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == _own_origin(request):
        return True
    origins = form.origins
    return not origins or origin.lower() in origins


def with_cors(request: HttpRequest, form: WebForm, response: HttpResponse) -> HttpResponse:
    """CORS headers for an allowed origin: any site when the form names none."""
    origin = request.headers.get("Origin")
    if origin and origin_allowed(request, form):
        response["Access-Control-Allow-Origin"] = origin if form.origins else "*"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type, Accept, Accept-Language"
        response["Access-Control-Max-Age"] = "86400"
    patch_vary_headers(response, ("Origin", "Accept-Language"))
    return response


# --- Reading a submission ---------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def wants_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get(
        "Accept", ""
    )


def read_submission(request: HttpRequest, form: WebForm) -> services.Submission:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > max_bytes():
        raise BadRequest(413, _("The form sent too much: shorten the text and send it again."))
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, _("The request could not be understood.")) from None
        if not isinstance(data, dict) or len(data) > 100:
            raise BadRequest(400, _("The request could not be understood."))
    else:
        multi = {
            spec.name
            for spec in services.form_fields(form)
            if catalogue.widget_of(spec.name).kind == "checkboxes"
        }
        if len(request.POST) > 100:
            raise BadRequest(400, _("The request could not be understood."))
        data = {
            key: (values if key in multi else values[-1] if values else "")
            for key, values in request.POST.lists()
        }
    data = {str(k): v for k, v in data.items()}
    page = data.get(services.PAGE) or ""
    page = page if isinstance(page, str) else ""
    utm = {}
    try:
        from_page = parse_qs(urlsplit(page).query) if page else {}
    except ValueError:  # "http://[::1" and the like: no parameters to read
        from_page = {}
    for key in services.UTM_KEYS:
        value = data.get(key) or request.GET.get(key) or (from_page.get(key) or [""])[0]
        if isinstance(value, str) and value.strip() and services.storable(value):
            utm[key] = value.strip()[:200]
    referrer = data.get(services.REFERRER)
    if not isinstance(referrer, str) or not referrer:
        referrer = request.headers.get("Referer", "") if not page else ""
    user_agent = request.headers.get("User-Agent", "")
    return services.Submission(
        values={k: v for k, v in data.items() if k not in services.RESERVED},
        token=data.get(tokens.FIELD) if isinstance(data.get(tokens.FIELD), str) else "",
        honeypot=data.get(services.HONEYPOT) or "",
        utm=utm,
        referrer=referrer if services.storable(referrer) else "",
        page=page if services.storable(page) else "",
        ip=get_client_ip_address(request) or None,
        user_agent=user_agent if services.storable(user_agent) else "",
    )


PROBLEMS = {
    "too_fast": lambda: _("That was quick: please check your entries and send the form again."),
    "expired": lambda: _("The form was open for too long: please send it again."),
    "missing": lambda: _(
        "The form could not be checked (is JavaScript switched off?): please send it again."
    ),
    "invalid": lambda: _("The form could not be checked: please send it again."),
}


def thanks_text(form: WebForm) -> str:
    return form.thank_you or _("Thank you! We will be in touch soon.")


# --- Pages ------------------------------------------------------------------------------


def _page(request, form, *, status=200, values=None, errors=None, message="") -> HttpResponse:
    utm = {k: request.GET[k][:200] for k in services.UTM_KEYS if request.GET.get(k)}
    if values is not None:
        utm = dict(values.get("__utm__") or {})
    html = form_html(
        request,
        form,
        token=tokens.issue(form.pk),
        values=values,
        errors=errors,
        utm=utm,
    )
    return render(
        request,
        "webforms/page.html",
        {"form": form, "form_html": html, "message": message},
        status=status,
    )


@require_GET
@xframe_options_exempt
def page(request: HttpRequest, key: str) -> HttpResponse:
    """The form on a page of its own (a link, or an iframe on the company's site)."""
    response = _page(request, active_form(key))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def embed(request: HttpRequest, key: str) -> HttpResponse:
    """A script that fills the snippet's token (and the page, referrer and UTM), or,
    without a snippet on the page, draws the form where the script stands. Never cached:
    each load hands out a fresh token."""
    form = active_form(key)
    source = render_to_string(
        "webforms/embed.js",
        {
            "key_json": json.dumps(form.key),
            "token_json": json.dumps(tokens.issue(form.pk)),
            "html_json": json.dumps(form_html(request, form)).replace("<", "\\u003c"),
            "fields_json": json.dumps(
                [tokens.FIELD, services.PAGE, services.REFERRER, *services.UTM_KEYS]
            ),
        },
    )
    response = HttpResponse(source, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _message(request, form, message: str, status: int) -> HttpResponse:
    context = {"form": form, "message": message}
    return render(request, "webforms/message.html", context, status=status)


def _too_many(request, form, wait: int, as_json: bool) -> HttpResponse:
    message = _("Too many submissions from your address: try again in a minute.")
    if as_json:
        body = {"ok": False, "error": "rate_limited", "message": message}
        response = with_cors(request, form, JsonResponse(body, status=429))
    else:
        response = _message(request, form, message, 429)
    response["Retry-After"] = str(wait)
    return response


def _answer(request, form, as_json: bool) -> HttpResponse:
    """Submit and answer: JSON for a script, else a redirect, a thank-you page, or the
    form again with its errors."""
    limit, window = rate_limit()
    ip = get_client_ip_address(request) or ""
    wait = throttle.hit("webforms-ip", ip, limit=limit, window=window)
    if wait:
        return _too_many(request, form, wait, as_json)
    if not origin_allowed(request, form):
        message = _("This form may not be sent from that site.")
        if as_json:
            return JsonResponse({"ok": False, "error": "origin", "message": message}, status=403)
        return _message(request, form, message, 403)
    try:
        submission = read_submission(request, form)
    except BadRequest as exc:
        if as_json:
            body = {"ok": False, "error": "bad_request", "message": exc.message}
            return with_cors(request, form, JsonResponse(body, status=exc.status))
        return _message(request, form, exc.message, exc.status)
    result = services.submit(form, submission)
    if result.accepted:
        if as_json:
            body = {"ok": True, "message": thanks_text(form), "redirect": form.redirect_url or None}
            return with_cors(request, form, JsonResponse(body))
        if form.redirect_url:
            return HttpResponseRedirect(form.redirect_url, status=303)
        return render(request, "webforms/thanks.html", {"form": form, "message": thanks_text(form)})
    if result.problem:
        message = PROBLEMS[result.problem]()
    else:
        message = _("Please correct the fields marked below.")
    if as_json:
        body = {"ok": False, "error": result.problem or "invalid", "message": message}
        if result.errors:
            body["errors"] = result.errors
        if result.problem:
            body["token"] = tokens.issue(form.pk)
        return with_cors(request, form, JsonResponse(body, status=400))
    values = {k: v for k, v in submission.values.items() if services.storable(v)}
    values["__utm__"] = submission.utm
    return _page(request, form, status=400, values=values, errors=result.errors, message=message)


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def submit(request: HttpRequest, key: str) -> HttpResponse:
    """The form's POST: form-encoded from the snippet or the page, or JSON."""
    form = active_form(key)
    if request.method == "OPTIONS":
        return with_cors(request, form, HttpResponse(status=204))
    return _answer(request, form, wants_json(request))


@csrf_exempt
@require_http_methods(["GET", "POST", "OPTIONS"])
def api(request: HttpRequest, key: str) -> HttpResponse:
    """JSON: GET describes the form and hands out a token; POST submits (a JSON object of
    the fields, the token and the honeypot)."""
    form = active_form(key)
    if request.method == "OPTIONS":
        return with_cors(request, form, HttpResponse(status=204))
    if request.method == "POST":
        return _answer(request, form, True)
    fields = []
    for row in field_rows(form):
        widget = row["widget"]
        fields.append(
            {
                "name": row["name"],
                "label": row["label"],
                "required": row["required"],
                "type": widget.input_type if widget.kind == "input" else widget.kind,
                "options": [{"value": v, "label": label} for v, label in widget.options],
            }
        )
    body = {
        "name": form.name,
        "title": form.title,
        "fields": fields,
        "token_field": tokens.FIELD,
        "token": tokens.issue(form.pk),
        "honeypot_field": services.HONEYPOT,
        "submit": urls(request, form)["api"],
    }
    response = with_cors(request, form, JsonResponse(body))
    response["Cache-Control"] = "no-store"
    return response
