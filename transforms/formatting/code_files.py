"""Format stage: a clean RepoFile becomes a training Document (paper §3.3, Figure 6a/6b).

The text is the file wrapped in InCoder's metadata markup (`transforms.formatting.markup`):

    <| file ext=.py source=github |>
    ...the file...
    <|/ file filename=string_utils.py dstars=4 |>

Attributes, in this order before they are placed at random:
  filename  the file's base name
  ext       its extension as written (`.py`); a notebook's is `.ipynb:<kernel language>`
            (`.ipynb` when the notebook names none); absent for a name without one
  source    where the repository is hosted, `github` or `gitlab`: the record's `origin`
            when the source knows it, else the source itself when that is github or
            gitlab, and `github` for the BigQuery GitHub archive. A local repository
            whose metadata names no origin gets no `source` attribute: we do not guess.
  dstars    the repository's star bucket (0-5, `transforms.formatting.buckets`), for GitHub
            repositories with a known star count only

Each attribute goes to the opening tag with probability 0.5, else to the closing tag,
in random order; the generator is `record_rng(seed, record id)`, so the text is the
same on every rerun and worker. Notebooks arrive already converted to their text and
code by the notebooks stage (`transforms.formatting.notebooks`, before the filters and dedup);
they get kind "notebook" and the `nbformat` meta entry. The star bucket boundaries
arrive as a side input (`StarBuckets` computes them over the run's repositories, or
the config pins them).
"""

from __future__ import annotations

import posixpath
from typing import Sequence

import apache_beam as beam

from schemas import stage_names
from schemas.records import Document, RepoFile, record_rng
from transforms.formatting import markup
from transforms.formatting.buckets import HistogramFn, bucket_of, entry_of_histogram
from transforms.record_fn import RecordFn

HOSTS = ("github", "gitlab")
SOURCE_HOSTS = {"github": "github", "gitlab": "gitlab", "bigquery": "github"}  # record.source → host


def host_of(record: RepoFile) -> str | None:
    """`github`, `gitlab`, or None when the repository's host is unknown."""
    if record.origin in HOSTS:
        return record.origin
    return SOURCE_HOSTS.get(record.source)


def counts_for_stars(record: RepoFile) -> bool:
    """Whether the file gets `dstars` (and its repository counts for the bucket boundaries)."""
    return host_of(record) == "github" and record.stars is not None


def file_ext(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[1]


class FormatCodeFn(RecordFn):
    """RepoFile → Document (kind code or notebook) with the markup text and metadata columns."""

    stage = stage_names.FORMAT

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, record: RepoFile, *, star_boundaries: Sequence[float]) -> Document:
        ext, kind, meta = file_ext(record.path), "code", ()
        if record.nbformat is not None:  # converted by the notebooks stage
            ext = f"{ext}:{record.kernel}" if record.kernel else ext
            kind = "notebook"
            meta = (("nbformat", str(record.nbformat)),)
            self.count("notebooks")
        host = host_of(record)
        bucket = bucket_of(record.stars, star_boundaries) if counts_for_stars(record) else None
        attrs = [("filename", posixpath.basename(record.path))]
        attrs += [("ext", ext)] if ext else []
        attrs += [("source", host)] if host else []
        attrs += [("dstars", bucket)] if bucket is not None else []
        start, end = markup.place_attributes(attrs, record_rng(self.seed, record.id))
        self.count("attributes_at_start", len(start))
        self.count("attributes_at_end", len(end))
        return Document(
            id=record.id,
            kind=kind,
            text=markup.wrap("file", record.content, start, end),
            source=record.source,
            repo=record.repo,
            path=record.path,
            lang=record.lang,
            license=record.license,
            stars=record.stars,
            star_bucket=bucket,
            meta=meta,
            ext=markup.attribute_value(ext) if ext else None,
            origin=host,
        )


def repo_stars(record: RepoFile) -> tuple[str, int]:
    return record.repo, record.stars


class StarBuckets(beam.PTransform):
    """RepoFiles → one element: the `star_buckets` entry computed over the run's repositories.

    One value per GitHub repository with a known star count (`counts_for_stars`), taken
    from the files that reach this stage, so the buckets describe the repositories whose
    files are in the dataset; the entry also says how many repositories that was.
    """

    def expand(self, files):
        stars = (
            files
            | "KeepGitHubWithStars" >> beam.Filter(counts_for_stars)
            | "KeyRepoToStars" >> beam.Map(repo_stars)
            | "OnePerRepo" >> beam.CombinePerKey(max)
            | "Stars" >> beam.Values()
        )
        histogram = stars | "Histogram" >> beam.CombineGlobally(HistogramFn())
        return histogram | "ManifestEntry" >> beam.Map(entry_of_histogram, "repositories")
