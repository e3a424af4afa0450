"""A web form's submission, from raw values to a lead (or a follow-up on an open lead the
visitor already is), by the one validation path: each value through
crm.fields.coerce (as an import's or the API's), then pipelines.services.create_lead
(custom values checked, the model's full_clean, the stage's required fields), made by the
system actor "web form «name»" so history says so and record events fire.

What the visitor typed is never altered silently nor lost: a value the form has no field
for is kept on the submission row and noted on the lead as a follow-up; a value refused
is an error on its field and nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from accounts import access
from accounts.actors import ActorKind, system
from accounts.models import User
from automation.notifications import notify
from crm.fields import coerce
from crm.models import DictionaryItem
from crm.services.activities import log_activity
from crm.validation import ACTIVITY_CONTENT_MAX
from pipelines.models import Lead, LeadStatus
from pipelines.services import create_lead

from . import catalogue, tokens
from .models import Assignment, Outcome, WebForm, WebFormField, WebFormSubmission

# Named so that no browser autofill fills it (a "website" or "url" field could be).
HONEYPOT = "_wf_hp"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
REFERRER = "_wf_referrer"
PAGE = "_wf_page"
# Posted names that are the form's machinery, not the visitor's values.
RESERVED = frozenset({tokens.FIELD, HONEYPOT, REFERRER, PAGE, "csrfmiddlewaretoken", *UTM_KEYS})
NON_FIELD = "__all__"


def limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@dataclass
class Submission:
    """What arrived: the visitor's values by posted name (the form's machinery taken
    out), and where it came from."""

    values: dict[str, Any]
    token: str = ""
    honeypot: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    referrer: str = ""
    page: str = ""
    ip: str | None = None
    user_agent: str = ""


@dataclass
class Result:
    """`outcome` (an Outcome) when accepted; else `problem` (a token's: missing, invalid,
    expired, too_fast) or `errors` by field name (NON_FIELD for the form as a whole)."""

    outcome: str = ""
    lead: Lead | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    problem: str = ""

    @property
    def accepted(self) -> bool:
        return bool(self.outcome)


def actor_for(form: WebForm) -> User:
    return system(kind=ActorKind.WEBFORM, id=form.pk, name=form.name)


def form_fields(form: WebForm) -> list[WebFormField]:
    """The form's fields a visitor sees: those still offered (a custom field deactivated
    since drops out)."""
    offered = set(catalogue.field_names())
    return [f for f in form.fields.all() if f.name in offered]


# --- Reading the values ------------------------------------------------------------------


def storable(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate from JSON
            return False
        return True
    if isinstance(value, bool | int | float) or value is None:
        return True
    if isinstance(value, list):
        return all(isinstance(v, str | int | float) and storable(v) for v in value)
    return False


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    return "" if value is None else str(value)


def clean(
    form: WebForm, values: dict[str, Any], *, by: User
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """(standard values, custom values as stored, values outside the form's fields,
    errors by field name) — each field's value through crm.fields.coerce."""
    standard: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    fields = form_fields(form)
    names = {f.name for f in fields}
    max_text = limit("WEBFORMS_MAX_TEXT", 2000)
    for name, raw in values.items():
        if not storable(raw):
            target = name if name in names else NON_FIELD
            errors.setdefault(target, []).append(
                _("The value contains a character that cannot be stored.")
            )
    for spec in fields:
        if spec.name in errors:
            continue
        raw = values.get(spec.name)
        unticked = raw is False  # a consent box sent as JSON false
        if coerce.is_empty(raw) or (unticked and spec.required):
            if spec.required:
                errors[spec.name] = [_("This field is required.")]
            continue
        if isinstance(raw, str) and len(raw) > max_text:
            errors[spec.name] = [
                _("Too long: at most %(limit)d characters (it has %(length)d).")
                % {"limit": max_text, "length": len(raw)}
            ]
            continue
        try:
            value = coerce.coerce_value("lead", spec.name, raw, user=by)
        except ValidationError as exc:
            errors[spec.name] = exc.messages
            continue
        except LookupError:
            continue  # the field went away meanwhile
        if spec.name.startswith("cf_"):
            if value is not None:
                custom[spec.name.removeprefix("cf_")] = value
        else:
            standard[spec.name] = value
    extra = {k: v for k, v in values.items() if k not in names}
    max_extra = limit("WEBFORMS_MAX_EXTRA_FIELDS", 10)
    if len(extra) > max_extra or any(
        len(str(k)) > 100 or len(_shown(v)) > 500 for k, v in extra.items()
    ):
        errors.setdefault(NON_FIELD, []).append(
            _("The form sent more than it asks for; reload the page and send it again.")
        )
    return standard, custom, extra, errors


def _errors_of(exc: ValidationError, fields: list[WebFormField]) -> dict[str, list[str]]:
    """A service's refusal by the form's fields; one about a field the form does not
    show is the form's, naming the field."""
    names = {f.name for f in fields}
    result: dict[str, list[str]] = {}
    if not hasattr(exc, "error_dict"):
        return {NON_FIELD: exc.messages}
    for name, messages in exc.message_dict.items():
        if name in names:
            result.setdefault(name, []).extend(messages)
        elif name == NON_FIELD:
            result.setdefault(NON_FIELD, []).extend(messages)
        else:
            label = catalogue.label_of(name)
            result.setdefault(NON_FIELD, []).extend(f"{label}: {m}" for m in messages)
    return result


# --- Owner -------------------------------------------------------------------------------


def may_own_leads(user: User | None) -> bool:
    return bool(user and user.is_active and access.has_permission(user, "lead", "change"))


def next_owner(form: WebForm) -> User | None:
    """Who a new lead goes to. Call with the form's row locked (select_for_update):
    the round robin's pointer moves under the lock, so two leads at once go to two
    people. A fixed person who may no longer own leads, or a department without such
    members, leaves the lead unassigned (the pool), where every rep sees it."""
    if form.assignment == Assignment.USER:
        return form.owner if may_own_leads(form.owner) else None
    if form.assignment != Assignment.ROUND_ROBIN or not form.department_id:
        return None
    members = [
        user
        for user in User.objects.filter(department_id=form.department_id, is_active=True)
        .select_related("role")
        .order_by("pk")
        if may_own_leads(user)
    ]
    if not members:
        return None
    after = form.last_assigned_id or 0
    chosen = next((user for user in members if user.pk > after), members[0])
    WebForm.objects.filter(pk=form.pk).update(last_assigned=chosen)
    form.last_assigned = chosen
    return chosen


# --- Duplicates and notes ----------------------------------------------------------------


def open_lead_matching(phone: str, email: str) -> Lead | None:
    """An open lead with the same phone (both E.164) or email (ignoring case)."""
    match = Q()
    if phone:
        match |= Q(phone=phone)
    if email:
        match |= Q(email__iexact=email)
    if not match:
        return None
    return Lead.objects.filter(match, status=LeadStatus.OPEN).order_by("-created_at", "-id").first()


def _note_kind() -> DictionaryItem | None:
    return DictionaryItem.objects.filter(
        dictionary__code="activity_kind", code="note", is_active=True
    ).first()


def _lines(form: WebForm, values: dict[str, Any], sub: Submission) -> list[str]:
    labels = {f.name: f.display_label for f in form_fields(form)}
    lines = [
        f"{labels.get(name, name)}: {_shown(value)}"
        for name, value in values.items()
        if not coerce.is_empty(value)
    ]
    lines += [f"{key}: {sub.utm[key]}" for key in UTM_KEYS if sub.utm.get(key)]
    if sub.page:
        lines.append(_("Page: %(url)s") % {"url": sub.page})
    if sub.referrer:
        lines.append(_("Referrer: %(url)s") % {"url": sub.referrer})
    return lines


def _note(lead: Lead, heading: str, lines: list[str], *, by: User) -> None:
    """The lines as follow-ups on the lead: as many as its length needs, so nothing is
    cut off."""
    kind = _note_kind()
    chunk: list[str] = [heading]
    chunks = []
    for line in lines:
        if len("\n".join([*chunk, line])) > ACTIVITY_CONTENT_MAX:
            chunks.append(chunk)
            chunk = [heading]
        chunk.append(line[: ACTIVITY_CONTENT_MAX - len(heading) - 1])
    chunks.append(chunk)
    for part in chunks:
        log_activity(customer=None, by=by, kind=kind, content="\n".join(part), subject=lead)


def _tell_owner(lead: Lead, title, lines: list[str]) -> None:
    """The lead's owner hears of it in the app (the bell), in the owner's language: a
    follow-up the system logged on a lead is seen in the author's data scope, which a
    rep's own scope is not. `title()` makes the title in the active language."""
    if lead.owner_id and lead.owner.is_active:
        with translation.override(lead.owner.language or settings.LANGUAGE_CODE):
            text = title()
        notify(user=lead.owner, title=text, body="\n".join(lines), record=lead, kind="assignment")


# --- Submitting --------------------------------------------------------------------------


def _log(form: WebForm, sub: Submission, outcome: str, nonce: str = "") -> WebFormSubmission:
    return WebFormSubmission.objects.create(
        form=form,
        form_name=form.name,
        outcome=outcome,
        nonce=nonce,
        ip=sub.ip,
        user_agent=sub.user_agent[:300],
        referrer=sub.referrer[:1000],
        page=sub.page[:1000],
        utm=sub.utm,
        payload={k: v for k, v in sub.values.items() if storable(v)},
    )


def submit(form: WebForm, sub: Submission, *, now: float | None = None) -> Result:
    """Turn a submission into a lead, a follow-up on the open lead it matches, or nothing:

    - the honeypot filled: answered as a success, only the spam row written;
    - a token missing, forged, expired or handed out less than WEBFORMS_MIN_SECONDS ago:
      refused (`problem`), nothing written;
    - a value refused: `errors` by field, nothing written;
    - the same token again (a double click, a resent page): one lead; the second is
      answered like the first;
    - an open lead with the same phone or email: no second lead, a follow-up on it
      saying the form was sent again, with the values."""
    if str(sub.honeypot or "").strip():
        _log(form, Submission(values={}, ip=sub.ip, user_agent=sub.user_agent), Outcome.SPAM)
        return Result(outcome=Outcome.SPAM)
    try:
        token = tokens.check(sub.token, form.pk, now=now)
    except tokens.TokenProblem as problem:
        return Result(problem=problem.code)
    by = actor_for(form)
    standard, custom, extra, errors = clean(form, sub.values, by=by)
    if errors:
        return Result(errors=errors)
    fields = form_fields(form)
    try:
        with transaction.atomic():
            locked = WebForm.objects.select_for_update().get(pk=form.pk)
            try:
                with transaction.atomic():
                    row = _log(locked, sub, Outcome.CREATED, token.nonce)
            except IntegrityError:
                first = WebFormSubmission.objects.filter(form=locked, nonce=token.nonce).first()
                return Result(outcome=Outcome.REPEAT, lead=first.lead if first else None)
            existing = open_lead_matching(standard.get("phone", ""), standard.get("email", ""))
            if existing is not None:
                # Stored texts in the organisation's language, not the visitor's.
                with translation.override(settings.LANGUAGE_CODE):
                    heading = _("Sent the web form “%(name)s” again:") % {"name": locked.name}
                    lines = _lines(locked, sub.values, sub)
                _note(existing, heading, lines, by=by)
                _tell_owner(
                    existing,
                    lambda: (
                        _("%(lead)s sent the web form “%(name)s” again")
                        % {"lead": existing.display_name, "name": locked.name}
                    ),
                    lines,
                )
                row.outcome, row.lead = Outcome.DUPLICATE, existing
                row.save(update_fields=["outcome", "lead"])
                return Result(outcome=Outcome.DUPLICATE, lead=existing)
            stage = locked.starting_stage()
            lead = Lead(
                **standard,
                custom=custom,
                source=locked.source,
                owner=next_owner(locked),
                pipeline=stage.pipeline if stage else None,
                stage=stage,
            )
            create_lead(lead=lead, by=by)
            with translation.override(settings.LANGUAGE_CODE):
                heading = _("Also sent with the web form “%(name)s”:") % {"name": locked.name}
                lines = _lines(locked, extra, sub)
                everything = _lines(locked, sub.values, sub)
            if lines:
                _note(lead, heading, lines, by=by)
            _tell_owner(
                lead,
                lambda: (
                    _("New lead from the web form “%(name)s”: %(lead)s")
                    % {"name": locked.name, "lead": lead.display_name}
                ),
                everything,
            )
            row.lead = lead
            row.save(update_fields=["lead"])
            return Result(outcome=Outcome.CREATED, lead=lead)
    except ValidationError as exc:
        return Result(errors=_errors_of(exc, fields))
