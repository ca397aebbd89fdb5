"""Runs a range of stages and records the result as a dataset version.

    corpus     sources → cleaned, formatted Documents (documents/, rejected/)
    tokenizer  Documents → a trained BPE tokenizer (tokenizer/)
    binarize   Documents + tokenizer → token shards (shards/)
    train      shards → a causal-masking model checkpoint (checkpoints/)

A range that starts with `corpus` makes a new version. A range that starts later
works on an existing version (`--dataset-version`), adding or replacing that stage's
outputs. Either way outputs are staged and moved into place only once the stages
succeed and the manifest is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import logging
import signal
import sys
import threading
import time
from typing import Callable, Iterator

import psutil
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from infra import storage
from infra.lock import DatasetLock
from infra.release import code_version
from infra.runtime import configure_process
from infra.verify import verify_version
from infra.version import (
    MANIFEST_FORMAT,
    VersionError,
    VersionStore,
    check_version_name,
    read_manifest,
    write_manifest,
    write_run_info,
)
from pipeline.corpus import local_repos
from pipeline.options import check_output_store, make_pipeline_options, recordable_options, runner_class, runs_on_dataflow
from pipeline.report import write_report
from pipeline.stages import STAGE_RUNNERS, StageContext
from schemas.config import STAGES, ConfigError, PipelineConfig
from schemas.errors import EmptyCorpusError
from transforms.dedup.exact import BLOOM_FILE
from transforms.sources.secret_manager import check_worker_token

log = logging.getLogger(__name__)

DEDUP_DIR = BLOOM_FILE.split("/")[0] + "/"  # the Bloom filter and the MinHash signatures (dedup/minhash/)
PR_SET_CHILD_SUBREAPER = 36  # prctl option (linux/prctl.h)
WORKER_PYTHON = (3, 11)  # the Python of the worker image (Dockerfile: FROM apache/beam_python3.11_sdk)


def parse_stages(spec: str | None, default: tuple[str, ...]) -> list[str]:
    """'corpus..binarize', 'tokenizer,binarize', 'train' or 'all' → ordered stage names."""
    if not spec:
        stages = list(default)
    elif spec == "all":
        stages = list(STAGES)
    elif ".." in spec:
        first, _, last = spec.partition("..")
        for s in (first, last):
            if s not in STAGES:
                raise ConfigError(f"--stages: unknown stage {s!r}; choose from {list(STAGES)}")
        stages = list(STAGES[STAGES.index(first) : STAGES.index(last) + 1])
    else:
        stages = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise ConfigError(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)} or a range a..b")
    missing = [s for s in stages if s not in STAGE_RUNNERS]
    if missing:
        raise ConfigError(f"--stages: stage(s) {missing} are not available in this build")
    return sorted(stages, key=STAGES.index)


def run_stages(
    config: PipelineConfig,
    out_root: str,
    stages: list[str],
    beam_args: list[str] | None = None,
    version: str | None = None,
    overwrite: bool = False,
    previous: str | None = None,
) -> str:
    """Run `stages` and return the directory of the version they built or extended.

    `previous` names an earlier version directory: it is recorded as the new version's
    parent (what the incremental options read from it is set in the config).
    """
    configure_process()  # for callers other than the CLI (which made it already: a no-op then)
    storage.check_reachable(out_root, "--out")
    check_output_store(out_root)
    if version is not None:
        check_version_name(version)
    store = VersionStore(out_root, config.name)
    options = make_pipeline_options(beam_args or [])
    check_worker_paths(config, out_root, options)
    if stages[0] == "corpus":
        local_repos(config, store.dataset_dir)  # sources and metadata checked before the dataset is touched
        check_previous_versions(config)
    with remember_interrupts() as interrupted, DatasetLock(store.dataset_dir) as lock:

        def before_commit() -> None:
            lock.check_held()
            if interrupted():  # a Ctrl-C that a library caught and went on from still stops the commit
                raise KeyboardInterrupt

        final = _run_locked(store, config, stages, options, version, overwrite, previous, before_commit, interrupted)
        # As `code-corpus verify` does. On an object store from its listing (sizes, md5s) against what the
        # writers hashed as they wrote: a re-read would pull the whole version through this process.
        verification = verify_version(final, quick=not storage.is_local(final))
    log.info("%s", verification.render().splitlines()[0])
    if not verification.ok:
        raise VersionError(verification.render())
    return final


def _run_locked(
    store, config, stages, options, version, overwrite, previous, before_commit=lambda: None, interrupted=lambda: False
) -> str:
    """The body of `run_stages`, while this run holds the dataset's lock (`before_commit` raises if the
    lock was lost or the run interrupted)."""
    tidy_dataset(store)
    started = time.time()
    version, final, work, manifest, input_dir = _plan(store, config, stages, version, previous)

    try:
        if stages[0] == "corpus":
            store.begin(version, overwrite)  # inside the try: a Ctrl-C right after it still removes the staging
        else:
            storage.delete_tree(work)
            storage.make_dirs(work)
        _run_each_stage(stages, config, options, manifest, input_dir, work, final)
        before_commit()
    except EmptyCorpusError as e:
        if stages[0] != "corpus" or "corpus" not in manifest["stages"]:
            _discard(work)
            raise
        kept = _commit_corpus_only(store, work, version, overwrite, manifest, options, started)
        raise EmptyCorpusError(
            f"{e}. The corpus stage's version was kept to show why: {kept} (its rejected/ holds "
            f"every rejection with its stage and reason; code-corpus inspect {kept})"
        ) from None
    except BaseException as e:
        _discard(work)  # a failed run leaves nothing that looks like output
        if isinstance(e, KeyboardInterrupt) or interrupted():
            log.warning("interrupted: nothing was committed; removed %s, which held what the run had staged", work)
            if not isinstance(e, KeyboardInterrupt):  # Beam re-raises a Ctrl-C that met a DoFn as its own error
                raise KeyboardInterrupt from e
        raise

    if stages[0] == "corpus":
        write_manifest(work, manifest)
        _record_run(work, stages, options, started)
        final = store.commit(work, version, overwrite)
    else:
        storage.delete_tree(work)
        write_manifest(final, manifest)
        _record_run(final, stages, options, started)
    write_report(final)
    return final


def _plan(store, config, stages, version, previous) -> tuple[str, str, str, dict, str]:
    """(version, its directory, the staging directory, the manifest, the first stage's input directory):
    a new version for a range that starts with `corpus`, else the existing `version`."""
    if stages[0] == "corpus":
        version = version or store.next_version()
        work = store.staging(version)
        return version, store.path(version), work, new_manifest(config, version, previous), work
    if not version:
        raise ConfigError(f"--stages {','.join(stages)} works on an existing version: pass --dataset-version vNNNN")
    final = store.path(version)
    return version, final, storage.join(final, f".{'-'.join(stages)}.partial"), read_manifest(final), final


def _run_each_stage(stages, config, options, manifest, input_dir, work, final) -> None:
    """Run the stages in order, adding each one's part to `manifest`; on an existing version each
    stage's outputs move into place before the next stage reads them."""
    for stage in stages:
        log.info("stage %s: starting", stage)
        ctx = StageContext(config, input_dir, work, options, manifest)
        added = STAGE_RUNNERS[stage](ctx)
        merge_manifest(manifest, added)
        manifest["stages"] = sorted(set(manifest["stages"]) | {stage}, key=STAGES.index)
        if input_dir != work:
            input_dir = _commit_into(work, final)
            storage.make_dirs(work)


def tidy_dataset(store: VersionStore) -> None:
    """What a run does first, holding the lock: finish the commits a killed run left half done
    (each finished version gets its report) and remove what runs cut short left."""
    for finished in store.finish_commits():
        write_report(store.path(finished))
    store.clean_incomplete()


def new_manifest(config: PipelineConfig, version: str, previous: str | None) -> dict:
    """The manifest of a new version before its stages add their parts."""
    return {
        "format": MANIFEST_FORMAT,
        "name": config.name,
        "version": version,
        "parents": [parent_name(previous)] if previous else [],
        "code_version": code_version(),
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "stages": [],
        "files": {},
    }


def _commit_corpus_only(store, work, version, overwrite, manifest, options, started) -> str:
    """Commit what the corpus stage built when a later stage found it empty: a version that explains itself."""
    storage.delete_tree(storage.join(work, "tokenizer"))
    write_manifest(work, manifest)
    _record_run(work, ["corpus"], options, started)
    final = store.commit(work, version, overwrite)
    write_report(final)
    return final


@contextlib.contextmanager
def remember_interrupts() -> Iterator[Callable[[], bool]]:
    """While a run goes on, SIGINT (Ctrl-C) raises KeyboardInterrupt as usual and is also remembered,
    so that one a library catches still stops the commit; yields "was there one?".

    The run's child processes (Beam's multi-processing workers) are stopped with SIGTERM first,
    and again until the run has unwound (`stop_children_until`): Beam's teardown waits for each
    worker, and one that did not get the signal (`kill -INT` reaches only this process) would
    keep it waiting for ever. What Beam's threads raise as they are torn down is then logged at
    DEBUG rather than printed as a traceback.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield lambda: False
        return
    seen: list[int] = []
    unwound = threading.Event()

    def interrupt(signum, frame):
        seen.append(signum)  # first: the threads of the workers stopped here raise as they end
        if len(seen) == 1:
            adopt_orphans(True)
            threading.Thread(target=stop_children_until, args=(unwound,), name="stop-children", daemon=True).start()
        stop_child_processes()
        raise KeyboardInterrupt

    def thread_error(args) -> None:
        if not seen:
            return previous_hook(args)
        log.debug("after Ctrl-C, thread %s: %r", getattr(args.thread, "name", "?"), args.exc_value)

    def beam_quiet_after_interrupt(record: logging.LogRecord) -> bool:
        """Beam logs the KeyboardInterrupt a DoFn's setup or bundle met as an error with its traceback."""
        return not (seen and record.name.startswith("apache_beam"))

    handlers = logging.getLogger().handlers  # filters on handlers see the records of every logger below
    previous, previous_hook = signal.signal(signal.SIGINT, interrupt), threading.excepthook
    threading.excepthook = thread_error
    for handler in handlers:
        handler.addFilter(beam_quiet_after_interrupt)
    try:
        yield lambda: bool(seen)
    finally:
        unwound.set()
        if seen:
            adopt_orphans(False)  # a caller that goes on after the interrupt gets its process back as it was
        signal.signal(signal.SIGINT, previous)
        threading.excepthook = previous_hook
        for handler in handlers:
            handler.removeFilter(beam_quiet_after_interrupt)


def stop_children_until(unwound: threading.Event, every: float = 0.1) -> None:
    """After Ctrl-C, SIGTERM the run's child processes every `every` seconds until the run has unwound.

    Beam starts each multi-processing worker from a thread of its own a moment after the runner
    asks for it, so a worker can appear after the first sweep. Beam's teardown then waits for that
    worker's thread while the worker, connected to the runner's still open control server, waits
    for work: each waits for the other for ever.
    """
    while not unwound.wait(every):
        stop_child_processes()


def adopt_orphans(adopt: bool) -> None:
    """Make this process the parent of its descendants' orphans (Linux), so that the sweeps reach them.

    Beam starts a worker as `sh -c python ...`: a shell stopped just after it forked its Python
    would leave that worker to init, outside this process's tree, waiting for the runner for ever.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, int(adopt), 0, 0, 0)


def stop_child_processes() -> None:
    """SIGTERM to every process this one started, and theirs (a Python worker ends at once, silently)."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # already gone
            child.terminate()


def check_worker_paths(
    config: PipelineConfig, out_root: str, options: PipelineOptions, launcher_python: tuple = tuple(sys.version_info[:2])
) -> None:
    """On Dataflow, fail now for what the workers could not run with: another Python than the
    worker image's (the job's pickled code must load there), paths on this machine's disk, a
    crawl token they would not have."""
    if not runs_on_dataflow(options):  # the runner as Beam resolves it: dataflow, dataflowrunner, a class path...
        return
    runner = runner_class(options.view_as(StandardOptions).runner).__name__  # one message for every spelling
    if launcher_python != WORKER_PYTHON:
        raise ConfigError(
            f"--runner {runner}: this launcher runs Python {'.'.join(map(str, launcher_python))}, the worker image "
            f"(Dockerfile: apache/beam_python{'.'.join(map(str, WORKER_PYTHON))}_sdk) runs "
            f"{'.'.join(map(str, WORKER_PYTHON))}; launch from a Python {'.'.join(map(str, WORKER_PYTHON))} environment"
        )
    sources = config.sources
    network = {"github": sources.github, "gitlab": sources.gitlab}
    for name, section in network.items():
        if section is not None:
            check_worker_token(section, f"sources.{name}")
    if sources.bigquery is not None and not sources.bigquery.project:
        raise ConfigError(
            "sources.bigquery.project: set it to the project billed for the query (e.g. the job's --project), so "
            "that the launcher's dry run and the workers' jobs run in the same project"
        )
    if sources.local:
        raise ConfigError(
            f"--runner {runner}: sources.local reads repositories from this machine's disk, which Dataflow workers "
            "cannot reach; run local sources with the local runner, or crawl them through a network source"
        )
    paths = [
        ("--out", out_root),
        *((f"sources.stackoverflow[{i}]", config.resolve(p)) for i, p in enumerate(sources.stackoverflow)),
        *(
            (f"sources.datasets[{i}].paths[{j}]", config.resolve(p))
            for i, d in enumerate(sources.datasets)
            for j, p in enumerate(d.paths)
        ),
        *((f"dedup.previous_versions[{i}]", config.resolve(p)) for i, p in enumerate(config.dedup.previous_versions)),
        *((f"sources.{name}.state_dir", s.state_dir) for name, s in network.items() if s and s.state_dir),
    ]
    local = [f"{key}={path!r}" for key, path in paths if storage.is_local(path)]
    if local:
        raise ConfigError(
            f"--runner {runner}: the workers cannot reach this machine's disk; put these on cloud storage (gs://...): "
            + ", ".join(local)
        )


def build_on_previous(config: PipelineConfig, previous: str, reuse_tokenizer: bool) -> PipelineConfig:
    """The config of an incremental run on top of `previous` (a version directory).

    Files whose dedup key is in the previous version's Bloom filter are left out
    (`dedup-previous-version`), and with `reuse_tokenizer` the previous tokenizer is
    copied instead of trained, so old and new shards share token ids.
    """
    storage.check_reachable(previous, "--previous")
    previous = storage.absolute(previous)
    read_manifest(previous)  # fails now, naming the directory, if it is not a complete version
    dedup = dataclasses.replace(config.dedup, previous_versions=(*config.dedup.previous_versions, previous))
    config = config.replace(dedup=dedup)
    if reuse_tokenizer:
        config = config.replace(tokenizer=dataclasses.replace(config.tokenizer, reuse_from=previous))
    return config


def check_previous_versions(config: PipelineConfig) -> None:
    """Fail before any work unless each earlier version's dedup files (Bloom filter, MinHash
    signatures) match its manifest: a damaged filter would silently leave out every new file
    (all bits set) or let every old one back in (all bits cleared). On Cloud Storage the store's
    md5 of each object, which any rewrite changes, is compared without downloading it."""
    for i, version in enumerate(config.dedup.previous_versions):
        path = config.resolve(version)
        try:
            found = verify_version(path, quick=not storage.is_local(path), under=DEDUP_DIR)  # as after a run
        except VersionError as e:
            raise ConfigError(f"dedup.previous_versions[{i}]: {e}") from None
        if not found.ok:
            raise ConfigError(
                f"dedup.previous_versions[{i}]: {path} does not match its manifest, so its dedup files cannot be "
                f"trusted: {'; '.join(found.problems)}"
            )


def parent_name(version_dir: str) -> str:
    """How a parent is recorded: `<name>/<version>` from its manifest."""
    manifest = read_manifest(version_dir)
    return f"{manifest['name']}/{manifest['version']}"


def merge_manifest(manifest: dict, added: dict) -> None:
    for key, value in added.items():
        if key in ("files", "counts") and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value


def _commit_into(work: str, final: str) -> str:
    """Move each output of a stage run on an existing version into place."""
    for entry in storage.list_children(work):
        storage.move_tree(storage.join(work, entry), storage.join(final, entry))
    storage.delete_tree(work)
    return final


def _discard(work: str) -> None:
    try:
        storage.delete_tree(work)
    except Exception:  # the run's own error is the one to report
        log.warning("could not remove %s", work, exc_info=True)


def _record_run(version_dir: str, stages: list[str], options: PipelineOptions, started: float) -> None:
    recorded, withheld = recordable_options(options)  # credentials never land beside the data
    write_run_info(
        version_dir,
        {
            "stages": stages,
            "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
            "wall_seconds": round(time.time() - started, 3),
            "pipeline_options": recorded,
            "withheld_options": withheld,
        },
    )
