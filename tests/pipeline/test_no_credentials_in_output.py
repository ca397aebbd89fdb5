"""No credential given to a run is written into the version it builds.

run.json records the pipeline options a run was given, so that a version says how it was
built; options that hold a credential (S3 keys, an Azure connection string, ...) are
withheld by name. Tokens read from the environment (HF_TOKEN, GITHUB_TOKEN) are never
recorded at all.
"""

from __future__ import annotations

import json
import os

import pytest

from infra.version import RUN_INFO
from pipeline.options import make_pipeline_options, recordable_options
from tests.conftest import copy_code_sample, run_cli

S3_KEY_ID = "AKIAEXAMPLEKEYID0001"
S3_SECRET = "s3-secret-wJalrXUtnFEMI-K7MDENG-bPxRfiCY"
S3_SESSION = "s3-session-FwoGZXIvYXdzEJr"
AZURE_KEY = "azure-account-key-Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1"
AZURE = f"DefaultEndpointsProtocol=https;AccountName=corpus;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net"
HF_TOKEN = "hf_ExampleTokenNotRealAbCdEfGhIjKlMn"
GITHUB_TOKEN = "ghp_ExampleTokenNotReal0123456789abcd"
CREDENTIAL_FLAGS = [
    f"--s3_access_key_id={S3_KEY_ID}",
    f"--s3_secret_access_key={S3_SECRET}",
    f"--s3_session_token={S3_SESSION}",
    f"--azure_connection_string={AZURE}",
]
SECRETS = [S3_KEY_ID, S3_SECRET, S3_SESSION, AZURE_KEY, HF_TOKEN, GITHUB_TOKEN]


def test_credential_options_are_withheld_and_the_rest_recorded():
    options = make_pipeline_options([*CREDENTIAL_FLAGS, "--direct_num_workers=2", "--gbek=c2VjcmV0", "--job_name=j"])
    recorded, withheld = recordable_options(options)
    assert withheld == ["azure_connection_string", "gbek", "s3_access_key_id", "s3_secret_access_key", "s3_session_token"]
    assert recorded["direct_num_workers"] == 2 and recorded["job_name"] == "j"
    assert not any(secret in json.dumps(recorded) for secret in [*SECRETS, "c2VjcmV0"])


@pytest.mark.slow  # builds the code sample
def test_a_run_given_credentials_leaves_no_trace_of_them_in_the_version(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    out = tmp_path / "out"
    proc = run_cli("run", "--config", copy_code_sample(tmp_path), "--out", str(out), "--stages", "corpus", *CREDENTIAL_FLAGS)
    assert not [secret for secret in SECRETS if secret in proc.stdout + proc.stderr]  # nor in what it printed

    version = out / "sample" / "v0001"
    files = [os.path.join(d, f) for d, _, names in os.walk(version) for f in names]
    assert len(files) > 5 and str(version / RUN_INFO) in files
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} in {path}"
    (run,) = json.loads((version / RUN_INFO).read_text())["runs"]
    assert run["withheld_options"] == ["azure_connection_string", "s3_access_key_id", "s3_secret_access_key", "s3_session_token"]
