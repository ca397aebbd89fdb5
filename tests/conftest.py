"""Shared fixtures: the bundled sample, built once per runner mode, and a way to run the CLI."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request

import filelock
import pytest
import yaml

from infra.runtime import configure_process, connect_anonymously_to_emulator
from pipeline import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SAMPLE_CONFIG = os.path.join(EXAMPLES, "sample.yaml")
SAMPLE_REPOS = os.path.join(EXAMPLES, "repos")

# The two DirectRunner modes every pipeline test runs under.
DIRECT_MODES = {
    "in_memory": ["--direct_running_mode=in_memory"],
    "multi_processing": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


# .ci/run sets this: there a missing browser fails the report's browser tests instead of skipping them.
REQUIRE_CHROMIUM = "CODE_CORPUS_REQUIRE_CHROMIUM"


@pytest.fixture
def chromium() -> str:
    """The headless browser the report's tests draw with; skipped where none is installed, unless required."""
    exe = shutil.which("chromium")
    if exe:
        return exe
    install = "apt-get install chromium (Debian's package)"
    if os.environ.get(REQUIRE_CHROMIUM) == "1":
        pytest.fail(f"{REQUIRE_CHROMIUM}=1 but no chromium is on PATH: {install}")
    pytest.skip(f"no chromium on PATH: {install} to run the report's browser tests")


def local_pipeline(*flags: str):
    """A TestPipeline on the CLI's local runner (Beam's FnApiRunner), its options made as the CLI makes
    them from `flags` (e.g. DIRECT_MODES' flags). Beam's default runner, the DirectRunner, would first
    try to download its Prism runner from the internet. (Beam is imported here, not with this module:
    xdist's controlling process loads this module too and runs no test.)"""
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline.options import make_pipeline_options

    return TestPipeline(options=make_pipeline_options(list(flags)))


def run_cli(*args: str, check: bool = True, fresh_process: bool = False) -> subprocess.CompletedProcess:
    """Run `code-corpus ARGS`; return its exit code and what it wrote to stdout and stderr.

    In this process by default (cli.main, with its log lines in stderr), which spares each
    call an interpreter's start-up; in a new process, exactly as a user runs it, with
    `fresh_process` (the session's in_memory sample build is run so).
    """
    if fresh_process:
        exe = shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"
        proc = subprocess.run([exe, *args], capture_output=True, text=True, cwd=ROOT)
    else:
        proc = _run_cli_here(list(args))
    if check and proc.returncode != 0:
        raise AssertionError(f"code-corpus {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def _run_cli_here(args: list[str]) -> subprocess.CompletedProcess:
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    level, handler = root.level, logging.StreamHandler(err)  # pytest's own log capture keeps lines from stderr
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as e:  # argparse's usage errors, --help and --version
                code = e.code or 0
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess(["code-corpus", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def sample_version(tmp_path_factory, worker_id):
    """mode → (version, process) of the README's main command on the sample, built once per mode.

    in_memory runs it in a new process, exactly as a user does; multi_processing in the
    test process, whose Beam workers are processes of their own all the same. Shared by
    every test that only reads the result; a test that changes a version copies it first.

    Under pytest-xdist the workers share one build per mode: the first to need it builds
    it under a lock in the run's common temporary folder, the others read what it left
    (the version, and the process's output as JSON). A worker that finds its mode being
    built builds the other mode meanwhile, if no one has, rather than wait idle.
    """
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    built = {}

    def ensure_built(mode: str, wait: bool) -> bool:
        """Whether the mode's build is there, after building it if no one else is (or waiting, with `wait`)."""
        out, result = shared / f"sample-{mode}", shared / f"sample-{mode}.json"
        try:
            with filelock.FileLock(str(shared / f"sample-{mode}.lock"), timeout=-1 if wait else 0):
                if not result.exists():
                    shutil.rmtree(out, ignore_errors=True)  # a build cut short by a failed worker
                    args = ("run", "--config", SAMPLE_CONFIG, "--out", str(out), *DIRECT_MODES[mode])
                    proc = run_cli(*args, fresh_process=mode == "in_memory")
                    result.write_text(json.dumps([proc.args, proc.returncode, proc.stdout, proc.stderr]))
        except filelock.Timeout:
            return False
        return True

    def build(mode: str = "in_memory"):
        if mode not in built:
            if not ensure_built(mode, wait=False):
                for other in DIRECT_MODES.keys() - {mode}:
                    ensure_built(other, wait=False)
                ensure_built(mode, wait=True)
            proc = subprocess.CompletedProcess(*json.loads((shared / f"sample-{mode}.json").read_text()))
            built[mode] = (shared / f"sample-{mode}" / "sample" / "v0001", proc)
        return built[mode]

    return build


def copy_code_sample(tmp_path) -> str:
    """A private copy of the bundled sample that a test may change, with a config beside it for
    its repositories alone (no StackOverflow dump, no near-dedup): a run of what most version
    tests need at a third of the sample's cost."""
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    config = yaml.safe_load((examples / "sample.yaml").read_text())
    del config["sources"]["stackoverflow"], config["stackoverflow"], config["dedup"]["near"]
    (examples / "code.yaml").write_text(yaml.safe_dump(config))
    return str(examples / "code.yaml")


def pytest_configure(config):
    """This process launches pipelines as `code-corpus` does, so it takes the launcher's settings
    (its local runner's workers inherit the Arrow pool's variable)."""
    configure_process()


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pytest.ini): a worker per core, at most four, since each imports Beam,
    torch and transformers and holds the sample builds it reads."""
    return min(os.cpu_count() or 1, 4)


def pytest_collection_modifyitems(items):
    """A test that reads the session's sample build waits for it: it is slow by construction."""
    for item in items:
        if "sample_version" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session):
    """What collection imported (Beam, torch, transformers, every test module: about 400,000
    objects) lives as long as the worker, so the garbage collector stops walking it (gc.freeze).
    A full collection took 0.17-0.29 s; over a full suite the two workers spent 15.8 s in them,
    10.5 s with the freeze (more of them, each a third of the cost)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(params=sorted(DIRECT_MODES))
def direct_mode(request) -> list[str]:
    return DIRECT_MODES[request.param]


GCS_BUCKET = "corpus"


@pytest.fixture(scope="session")
def gcs_server():
    """A Cloud Storage JSON API server on 127.0.0.1 (in memory), for `gs://` paths.

    google-cloud-storage, and so Beam's GCS filesystem, sends its requests there when
    STORAGE_EMULATOR_HOST is set; NO_GCE_CHECK stops the credentials lookup from
    probing for a metadata server.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(  # gcp-storage-emulator, taught generation preconditions (tests/gcs_emulator.py)
        [
            sys.executable,
            "-m",
            "tests.gcs_emulator",
            "start",
            "-H",
            "127.0.0.1",
            "--port",
            str(port),
            "--default-bucket",
            GCS_BUCKET,
            "--in-memory",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    host = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{host}/storage/v1/b/{GCS_BUCKET}", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the Cloud Storage emulator did not start") from None
            time.sleep(0.1)
    yield host
    proc.terminate()
    proc.wait()


def use_gcs_server(monkeypatch, host: str) -> None:
    """Send this process's `gs://` requests, and those of the CLI's subprocesses, to the server at `host`."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    connect_anonymously_to_emulator()  # this process imported the pipeline before the variable was set


@pytest.fixture
def gcs(gcs_server, monkeypatch, request) -> str:
    """A `gs://` folder of its own for one test (a module's shared build uses `use_gcs_server` itself)."""
    use_gcs_server(monkeypatch, gcs_server)
    return f"gs://{GCS_BUCKET}/{re.sub(r'[^A-Za-z0-9_-]+', '-', request.node.name)}"


def is_utf8(text: str) -> bool:
    """Whether UTF-8 can encode the string (no unpaired surrogate): what the Parquet writer needs."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def combine_in_bundles(fn, values: list, bundles: int):
    """A CombineFn's output as a runner gives it: values dealt into `bundles` accumulators, then merged."""
    accumulators = []
    for b in range(bundles):
        acc = fn.create_accumulator()
        for value in values[b::bundles]:
            acc = fn.add_input(acc, value)
        accumulators.append(acc)
    return fn.extract_output(fn.merge_accumulators(accumulators))


def peak_python_memory(compute):
    """(compute(), the peak bytes Python allocated while it ran), measured by tracemalloc."""
    tracemalloc.start()
    try:
        return compute(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def git(repo: str, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
        GIT_AUTHOR_DATE="2024-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2024-01-01T00:00:00Z",
    )
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True, env=env).stdout


def make_git_repo(path: str) -> str:
    """Turn a folder into a git repository with one commit; return the commit id."""
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return git(path, "rev-parse", "HEAD").strip()
