"""A gated Hub dataset read with a token from Secret Manager, by the launcher and by each worker.

Dataflow workers do not see the launcher's HF_TOKEN, so a gated dataset names its token's
secret version (`hub.token_secret`); every process that lists or reads the dataset reads
the secret itself. Here the worker is a process of its own (multi_processing), the
Hub on 127.0.0.1 answers 401 to any request without the token, and no HF_TOKEN is set.
"""

from __future__ import annotations

import apache_beam as beam
import pytest
import yaml
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import load_config
from tests.conftest import local_pipeline, run_cli
from tests.transforms.sources.hub_fake import FakeHub
from tests.transforms.sources.network_fakes import FakeSecretManager
from tests.transforms.sources.stack_files import stack_rows, write_parquet
from tests.transforms.sources.test_datasets_source import read_stage
from transforms.sources.datasets.source import read_datasets

pytestmark = pytest.mark.slow  # a run on a worker process

TOKEN = "hf_GatedExampleTokenNotReal0123456789"
SECRET = "projects/p/secrets/hf-token/versions/1"


class GatedHub(FakeHub):
    """The Hub's answer to a gated repository asked without an accepted token: 401 with X-Error-Code GatedRepo."""

    def __init__(self, *args, **kwargs):
        self.authorized = []
        super().__init__(*args, **kwargs)

    def handle(self, request):
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            response = self.json({"error": "Access to dataset bigcode/the-stack-dedup is restricted."}, 401)
            response.headers["X-Error-Code"] = "GatedRepo"
            return response
        self.authorized.append(request.path)
        return super().handle(request)


@pytest.fixture
def gated(tmp_path, monkeypatch):
    rows = stack_rows(files_per_package=2)
    write_parquet(rows, str(tmp_path / "train-00000-of-00001.parquet"), row_group_rows=4)
    hub = GatedHub(
        "bigcode/the-stack-dedup",
        {"data/python/train-00000-of-00001.parquet": (tmp_path / "train-00000-of-00001.parquet").read_bytes()},
    )
    secrets = FakeSecretManager({SECRET: TOKEN})
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no cached `hf auth login` token either
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield hub, secrets, rows
    hub.close()
    secrets.close()


def write_config(tmp_path, hub: dict) -> str:
    dataset = {
        "name": "stack",
        "preset": "the-stack-v1",
        "hub": {"repo_id": "bigcode/the-stack-dedup", "data_dir": "data/python", **hub},
    }
    path = tmp_path / "gated.yaml"
    path.write_text(yaml.safe_dump({"name": "ds", "stages": ["corpus"], "sources": {"datasets": [dataset]}}))
    return str(path)


def test_workers_read_a_gated_dataset_with_the_token_from_secret_manager(gated, tmp_path):
    """The datasets source alone, on a worker process: the launcher lists the files and the worker
    reads the row groups, each with the token it read from the secret, into the records the stage gives
    in this process (so the composite pickles and reads alike in both runner modes); no output carries the token."""
    hub, secrets, rows = gated
    path = write_config(tmp_path, {"token_secret": SECRET, "secret_api_endpoint": secrets.url})
    here, _ = read_stage(path)  # the read stage's RecordFn in this process: the records the worker must give
    assert sorted(f.path for f in here.kept) == sorted(r["max_stars_repo_path"] for r in rows)
    config = load_config(path)
    source = read_datasets(config.sources.datasets, config.resolve, config.read.max_file_bytes)
    launcher_reads = len(secrets.accessed)
    with local_pipeline("--direct_running_mode=multi_processing", "--direct_num_workers=1") as p:  # a worker process
        out = p | source
        assert_that(out.kept, equal_to(here.kept), label="TheSameRecordsAsHere")
        assert_that(out.rejected | "AllRejected" >> beam.Flatten(), equal_to([]), label="NoneRejected")
        emitted = (out.kept, *out.rejected, out.tally, *out.extras.values(), *out.manifest.values())
        leaks = emitted | "Everything" >> beam.Flatten() | beam.Map(repr) | beam.Filter(lambda text, token=TOKEN: token in text)
        assert_that(leaks, equal_to([]), label="NoToken")

    assert launcher_reads >= 1 and any("/resolve/" in path for path in hub.authorized)  # row groups read with the token
    assert len(secrets.accessed) > launcher_reads  # and the worker, in a process of its own, read the secret too


def test_without_the_token_the_gated_dataset_is_refused_before_any_work(gated, tmp_path):
    proc = run_cli("run", "--config", write_config(tmp_path, {}), "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode != 0 and "sources.datasets[0].hub.revision: cannot resolve 'main'" in proc.stderr
    assert "GatedRepoError: 401" in proc.stderr  # the Hub's own answer, named
    assert not (tmp_path / "out" / "ds" / "v0001").exists()


def test_an_unreadable_secret_names_the_key(gated, tmp_path):
    _, secrets, _ = gated
    config = write_config(tmp_path, {"token_secret": "projects/p/secrets/other/versions/1", "secret_api_endpoint": secrets.url})
    proc = run_cli("run", "--config", config, "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode != 0 and "sources.datasets[0].hub.token_secret: cannot read" in proc.stderr
