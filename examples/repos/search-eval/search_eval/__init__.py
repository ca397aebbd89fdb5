"""Code search evaluation helpers."""
