"""Deduplication: exact (one copy of each token sequence) and near (MinHash LSH clusters)."""
