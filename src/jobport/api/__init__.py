"""The HTTP faces: REST v1 (and, later, the compatible dialects)."""
