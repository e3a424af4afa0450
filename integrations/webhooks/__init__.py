"""Outbound webhooks: signed deliveries of record events to admins' HTTPS endpoints."""
