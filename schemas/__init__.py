"""Record types that flow between stages, their Arrow schemas, and the run configuration."""
