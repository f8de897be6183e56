"""Plain-Python models: generation backends, scoring, mastering. No Dagster here."""
