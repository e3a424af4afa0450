"""What can be imported: one `ImportSpec` per record type (filled in by the engine)."""
