"""Every configured network or dataset source, built for the graph (crawls and datasets list their files now)."""

from __future__ import annotations

import apache_beam as beam

from schemas.config import PipelineConfig
from transforms.sources.bigquery.source import ReadBigQueryFiles, estimate_and_check
from transforms.sources.crawl.github import GitHubHost
from transforms.sources.crawl.gitlab import GitLabHost
from transforms.sources.crawl.source import list_crawl
from transforms.sources.datasets.source import read_datasets


def network_sources(config: PipelineConfig, dataset_dir: str) -> list[tuple[str, beam.PTransform]]:
    """(name, transform) of each configured network or dataset source; the API listings and the BigQuery dry run run now."""
    sources = []
    sizes = (config.read.max_file_bytes, config.read.max_notebook_bytes)
    if config.sources.bigquery is not None:  # first: a cap below the scan fails in seconds, not after hours of listing
        estimate_and_check(config.sources.bigquery, *sizes)
    for host_cls in (GitHubHost, GitLabHost):
        if getattr(config.sources, host_cls.source) is not None:
            sources.append((host_cls.source, list_crawl(host_cls, config, dataset_dir)))
    if config.sources.bigquery is not None:
        section = config.sources.bigquery
        crawled = dict(sources).get("github")
        exclude = crawled.state_dir if crawled is not None and section.exclude_crawled else None
        sources.append(("bigquery", ReadBigQueryFiles(section, exclude, *sizes)))
    if config.sources.datasets:
        sources.append(("datasets", read_datasets(config.sources.datasets, config.resolve, *sizes)))
    return sources
