"""Published code datasets (The Stack, or Parquet / JSON Lines files) as a source."""
