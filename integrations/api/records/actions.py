"""Actions on one record, POST /api/v1/<type>/<id>/<action>/, each through the service
the pages use: stage moves (`pipelines.services.move_to_stage`, the only way a stage
changes), lead conversion, claiming from and releasing to the public pool, transfers,
completing and reopening tasks.

Refusals: a bad value or a rule the move breaks (a required field, a lost reason) is a
400 naming the field; a change someone made meanwhile (a stale stage, a lead or customer
claimed first) is a 409. Both say why in the user's language.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from crm.fields import coerce, schema
from crm.models import Customer, Task
from crm.services import customers as customer_services
from crm.services import tasks as task_services
from pipelines import services as pipeline_services
from pipelines.models import Lead

from . import serializers, values
from .specs import CONTACT, CUSTOMER, DEAL

NON_FIELD = values.NON_FIELD


class Conflict(APIException):
    """Someone changed the record meanwhile: reload and decide again."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _body(request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({NON_FIELD: [_("Send a JSON object of field values.")]})
    return request.data


def _coerced(record_type: str, name: str, raw, user, *, instance=None, required=True):
    """One raw value through crm.fields.coerce, its refusal under its own name."""
    try:
        value = coerce.coerce_value(record_type, name, raw, user=user, instance=instance)
    except DjangoValidationError as exc:
        raise ValidationError({name: [str(m) for m in exc.messages]}) from None
    if value is None and required:
        raise ValidationError({name: [_("This field is required.")]})
    return value


def _refused(exc: DjangoValidationError) -> APIException:
    """A stage service's refusal: stale → 409, else 400 under `stage` (with the
    missing fields' names for a required one)."""
    code = getattr(exc, "code", None)
    message = " ".join(str(m) for m in exc.messages)
    if code in ("stale", "owned"):
        return Conflict(detail=message, code=code)
    if isinstance(exc, pipeline_services.StageMoveRefused):
        detail: dict[str, Any] = {"stage": [message]}
        if exc.missing:
            detail["missing_fields"] = [name for name, _label in exc.missing]
        if code == "lost_reason":
            detail = {"lost_reason": [message]}
        return ValidationError(detail, code=code)
    return values.service_errors(exc)


# --- Stage moves ------------------------------------------------------------------------------


class MoveAction:
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move to another stage of the record's pipeline."""
        record, user, key = self.record("change"), request.user, self.spec.key
        data = _body(request)
        unknown = set(data) - {"stage", "expected_stage", "lost_reason", "lost_note", "values"}
        if unknown:
            raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
        stage = _coerced(key, "stage", data.get("stage"), user, instance=record)
        expected = None
        if data.get("expected_stage") is not None:
            try:
                expected = coerce.to_integer(data["expected_stage"], min_value=1)
            except DjangoValidationError as exc:
                raise ValidationError({"expected_stage": exc.messages}) from None
        lost_reason = None
        if data.get("lost_reason") not in (None, ""):
            lost_reason = _coerced(key, "lost_reason", data["lost_reason"], user, instance=record)
        note = data.get("lost_note") or ""
        if not isinstance(note, str):
            raise ValidationError({"lost_note": [_("Enter a text.")]})
        filled = self.move_values(record, data.get("values"))
        try:
            pipeline_services.move_to_stage(
                record=record,
                stage=stage,
                by=user,
                expected_stage_id=expected,
                lost_reason=lost_reason,
                lost_note=note.strip(),
                values=filled or None,
            )
        except DjangoValidationError as exc:
            raise _refused(exc) from None
        return self.saved(self.record("view"))

    def move_values(self, record, raw) -> dict[str, Any]:
        """Fields filled with the move (a stage's required ones): each coerced as in a
        write, then checked again by the service (field permissions, what the user may
        link). Standard names; custom fields as cf_<key>."""
        if raw in (None, {}):
            return {}
        if not isinstance(raw, dict):
            raise ValidationError({"values": [_("Send a JSON object of field values.")]})
        spec, user = self.spec, self.request.user
        custom = schema.custom_fields(spec.key) if spec.has_custom else []
        custom_names = {cf.name for cf in custom}
        filled, errors = {}, {}
        for name, value in raw.items():
            if name not in spec.writable and name not in custom_names:
                errors[name] = [_("Unknown field.")]
                continue
            try:
                filled[name] = coerce.coerce_value(
                    spec.key, name, value, user=user, instance=record
                )
            except DjangoValidationError as exc:
                errors[name] = [str(m) for m in exc.messages]
        if errors:
            raise ValidationError({"values": errors})
        return filled


# --- Leads: conversion ------------------------------------------------------------------------


def _new_record(spec, data, user, *, allowed, defaults: dict[str, Any]):
    """A record to create from a nested object of raw values, through the same parsing
    as a create (errors under the object's name)."""
    record = spec.model()
    parsed = values.parse_write(spec, data, user, instance=record, allowed=allowed)
    for name, value in defaults.items():
        if name not in data:
            parsed.values.setdefault(name, value)
    values.apply(parsed, record)
    stage = parsed.values.get("stage")
    if stage is not None and "pipeline" not in parsed.values:
        record.pipeline = stage.pipeline
    return record


def _nested(name: str, exc: ValidationError) -> ValidationError:
    return ValidationError({name: exc.detail})


class ConvertAction:
    @action(detail=True, methods=["post"])
    def convert(self, request, pk=None):
        """Turn an open lead into a customer (new or existing), optionally a contact
        and a deal (pipelines.services.convert_lead)."""
        lead: Lead = self.record("change")
        user = request.user
        data = _body(request)
        unknown = set(data) - {"customer", "contact", "deal"}
        if unknown:
            raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
        owner = lead.owner or user
        raw_customer = data.get("customer")
        try:
            if isinstance(raw_customer, dict) or raw_customer is None:
                name = lead.company_name or lead.person_name or lead.phone or lead.email
                from_lead = {"name": name, "phone": lead.phone, "email": lead.email}
                given = {**from_lead, **(raw_customer or {})}
                customer = _new_record(
                    CUSTOMER,
                    given,
                    user,
                    allowed=(*CUSTOMER.writable, "owner"),
                    defaults={"owner": owner},
                )
            else:
                customer = _coerced("deal", "customer", raw_customer, user)
        except ValidationError as exc:
            raise _nested("customer", exc) from None
        contact = None
        raw_contact = data.get("contact")
        if raw_contact not in (None, False):
            if raw_contact is True:
                raw_contact = {
                    "name": lead.person_name,
                    "title": lead.title,
                    "mobile": lead.phone,
                    "email": lead.email,
                    "wechat": lead.wechat,
                }
            allowed = tuple(n for n in CONTACT.writable if n != "customer")
            try:
                contact = _new_record(CONTACT, raw_contact, user, allowed=allowed, defaults={})
            except ValidationError as exc:
                raise _nested("contact", exc) from None
        deal = None
        if data.get("deal") not in (None, False):
            allowed = tuple(
                n for n in (*DEAL.writable, *DEAL.create_only) if n not in ("customer", "contact")
            )
            try:
                deal = _new_record(
                    DEAL, data["deal"], user, allowed=allowed, defaults={"owner": owner}
                )
            except ValidationError as exc:
                raise _nested("deal", exc) from None
        try:
            done = pipeline_services.convert_lead(
                lead=lead, by=user, customer=customer, contact=contact, deal=deal
            )
        except DjangoValidationError as exc:
            raise _refused(exc) from None
        return Response(
            {
                "lead": lead.pk,
                "customer": done.customer.pk,
                "contact": done.contact.pk if done.contact else None,
                "deal": done.deal.pk if done.deal else None,
                "customer_created": done.customer_created,
            }
        )


# --- Owners: claim, release, transfer ---------------------------------------------------------


class ClaimAction:
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        """Take a record of the public pool (an unassigned lead)."""
        record = self.record("view")
        user = request.user
        if record.owner_id is not None:
            raise Conflict(detail=_("It has an owner already."), code="owned")
        try:
            if isinstance(record, Customer):
                customer_services.claim_customer(customer_id=record.pk, by=user)
            else:
                pipeline_services.claim_lead(lead=record, by=user)
        except customer_services.PoolError as exc:
            raise Conflict(detail=str(exc), code="pool") from None
        except DjangoValidationError as exc:
            raise _refused(exc) from None
        return self.saved(self.record("view"))


class ReleaseAction:
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Return the record to the public pool (unassign a lead)."""
        data = _body(request)
        if self.record("view").owner_id is None:
            raise Conflict(detail=_("It is in the public pool already."), code="pool")
        record = self.record("change")
        reason = data.get("reason") or ""
        if not isinstance(reason, str):
            raise ValidationError({"reason": [_("Enter a text.")]})
        rows = type(record).objects.filter(pk=record.pk)
        try:
            if isinstance(record, Customer):
                customer_services.release_customers(customers=rows, by=request.user, reason=reason)
            else:
                pipeline_services.transfer_records(rows, to=None, by=request.user)
        except DjangoValidationError as exc:
            raise ValidationError({"reason": [str(m) for m in exc.messages]}) from None
        return self.saved(self.record("view"))


class TransferAction:
    @action(detail=True, methods=["post"])
    def transfer(self, request, pk=None):
        """Give the record to another owner, in the user's data scope."""
        record = self.record("change")
        data = _body(request)
        if set(data) - {"owner"}:
            raise ValidationError({n: [_("Unknown field.")] for n in sorted(set(data) - {"owner"})})
        to = _coerced(self.spec.key, "owner", data.get("owner"), request.user, instance=record)
        rows = type(record).objects.filter(pk=record.pk)
        try:
            if isinstance(record, Customer):
                customer_services.transfer_customers(customers=rows, to=to, by=request.user)
            else:
                pipeline_services.transfer_records(rows, to=to, by=request.user)
        except DjangoValidationError as exc:
            raise values.service_errors(exc) from None
        return self.saved(record_after(self, record))


def record_after(view, record):
    """The record as it is now, if the user still sees it (given away outside the
    scope: as it was saved, without a second check)."""
    found = view.related(type(record).objects.visible_to(view.request.user)).filter(pk=record.pk)
    return found.first() or type(record).objects.get(pk=record.pk)


# --- Tasks ------------------------------------------------------------------------------------


class CompleteAction:
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """Mark the task done (done already: nothing changes)."""
        task: Task = self.record("change")
        task_services.complete_task(task=task, by=request.user)
        return self.saved(self.record("view"))


class ReopenAction:
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Open a done task again."""
        task: Task = self.record("change")
        task_services.reopen_task(task=task, by=request.user)
        return self.saved(self.record("view"))


ACTIONS: dict[str, type] = {
    "move": MoveAction,
    "convert": ConvertAction,
    "claim": ClaimAction,
    "release": ReleaseAction,
    "transfer": TransferAction,
    "complete": CompleteAction,
    "reopen": ReopenAction,
}

_REFUSED = OpenApiResponse(description="Refused: errors by field, in the user's language.")
_CONFLICT = OpenApiResponse(description="Changed meanwhile (stale stage, claimed first).")


def schema_of(name: str, read) -> dict[str, Any]:
    """How an action is described in the OpenAPI schema."""
    if name == "move":
        return {
            "request": serializers.MoveSerializer,
            "responses": {200: read, 400: _REFUSED, 409: _CONFLICT},
            "summary": "Move to another stage",
        }
    if name == "convert":
        return {
            "request": serializers.ConvertSerializer,
            "responses": {200: serializers.ConversionResultSerializer, 400: _REFUSED},
            "summary": "Convert the lead",
        }
    if name == "transfer":
        return {
            "request": serializers.OwnerSerializer,
            "responses": {200: read, 400: _REFUSED},
            "summary": "Transfer to another owner",
        }
    if name == "release":
        return {
            "request": serializers.ReleaseSerializer,
            "responses": {200: read, 400: _REFUSED, 409: _CONFLICT},
            "summary": "Return to the public pool",
        }
    return {
        "request": None,
        "responses": {200: read, 409: _CONFLICT},
        "summary": name.capitalize(),
    }
