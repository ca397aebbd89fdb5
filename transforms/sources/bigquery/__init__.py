"""The GitHub archive on BigQuery: the files the API crawl did not get (paper §3.1)."""
