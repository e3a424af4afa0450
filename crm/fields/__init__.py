"""Custom fields and field permissions: types (validation and storage), schema (which
fields a user sees and edits), forms, queries (filters, sorting, indexes)."""
