-- Python and Jupyter files of permissively licensed repositories in the GitHub archive on
-- BigQuery (paper §3.1 and its footnote 5), leaving out the repositories the API crawl has.
--
-- Parameters:
--   @licenses        ARRAY<STRING>  license keys as the licenses table spells them: mit, apache-2.0, ...
--   @extensions      ARRAY<STRING>  lower-case file name endings to keep: .py, .ipynb
--   @max_file_bytes  INT64          larger files come back without content (rejected as too-large)
--   @max_notebook_bytes  INT64      the same for .ipynb files (read.max_notebook_bytes)
--   @read_shards     INT64          rows are spread over this many shards, each read in its own session
-- Filled in before the query runs (identifiers, which BigQuery does not take as parameters):
--   {dataset}  the configured dataset (sources.bigquery.dataset)
--   {exclude}  the loaded table of lower-case owner/name already crawled (column repo_name), or an
--              empty subquery; the anti-join below has no size cap, unlike an array parameter
SELECT
  f.repo_name,
  f.ref,
  f.path,
  l.license,
  f.symlink_target IS NOT NULL AS is_symlink,
  c.size,
  c.binary,
  IF(c.size <= IF(ENDS_WITH(LOWER(f.path), '.ipynb'), @max_notebook_bytes, @max_file_bytes), c.content, NULL) AS content,
  MOD(ABS(FARM_FINGERPRINT(CONCAT(f.repo_name, '/', f.ref, '/', f.path))), @read_shards) AS shard
FROM `{dataset}.files` AS f
JOIN `{dataset}.licenses` AS l
  ON l.repo_name = f.repo_name
JOIN `{dataset}.contents` AS c
  ON c.id = f.id
LEFT JOIN {exclude} AS x
  ON x.repo_name = LOWER(f.repo_name)
WHERE l.license IN UNNEST(@licenses)
  AND EXISTS (SELECT 1 FROM UNNEST(@extensions) AS ext WHERE ENDS_WITH(LOWER(f.path), ext))
  AND x.repo_name IS NULL
