"""The per-file cleaning stages: license, language, decontamination, quality filters, PII scrubbing."""
