"""The REST API under /api/v1/, its OpenAPI document and personal API tokens."""
