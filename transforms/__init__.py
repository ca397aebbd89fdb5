"""The pipeline stages: each a composite PTransform around a plain per-record function."""
