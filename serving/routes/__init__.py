"""One router per resource, mounted under /api/v1 (health at the root too)."""
