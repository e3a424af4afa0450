"""The OpenAPI document's parts that no view declares: the error shape every operation
may answer with (integrations/api/errors.py), added by a drf-spectacular postprocessing
hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Every error: a message in the caller's language and a machine-readable code; "
        "invalid input (400, code `invalid`) also has the messages by field in `errors` "
        "(`non_field_errors` for those about no single field)."
    ),
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {}},
    },
    "required": ["detail", "code"],
}

RESPONSES = {
    "400": "Invalid input or parameters.",
    "401": "No token, or a token that is unknown, revoked or expired, or whose user is inactive.",
    "403": "The caller's role may not do this.",
    "404": "No such record, or one outside the caller's data scope.",
    "429": "Over the rate limit; the Retry-After header says when to try again.",
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
METHODS = ("get", "put", "patch", "post", "delete")


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: the Error schema, and the error responses each operation
    may give (a view's own description of a status wins; every error's body is Error)."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for path, item in result.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            statuses = ["401", "403", "429"]
            if "{" in path:
                statuses.append("404")
            queried = any(p.get("in") == "query" for p in operation.get("parameters", []))
            if queried or operation.get("requestBody") or method != "get":
                statuses.append("400")
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                responses.setdefault(status, {"description": RESPONSES[status]})
            for status, response in responses.items():
                if str(status)[0] in "45" and "content" not in response:
                    # A view's own description of an error (409: changed meanwhile)
                    # has the one error body all the same.
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
    return result
