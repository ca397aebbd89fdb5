"""Every process-wide setting the project makes, and every private Beam name it uses, in one place.

Nothing here acts on import: importing any module of `infra` leaves the environment, the
loggers and the libraries as they were. The settings are applied by explicit calls:

    configure_process()  the launchers (`code-corpus`, `pipeline.run.run_stages`), first thing
    configure_worker()   the `setup` of each DoFn that touches storage or streams file contents

Beam's workers do not run the launcher. What they need, and how they get it:

- Arrow's C++ default memory pool is chosen once, from ARROW_DEFAULT_MEMORY_POOL, when pyarrow is
  first imported: a DoFn's `setup` runs after its module (and so pyarrow) was imported, too late
  to choose it. Local workers inherit the variable from the launcher, which sets it before it
  starts them; the worker image sets it itself (Dockerfile `ENV`). `setup` still points pyarrow's
  own default pool at the system allocator and makes glibc trim (`return_freed_memory`).
- The Cloud Storage emulator's anonymous connection is a per-process cache: each worker fills it.
- Beam's apitools note is logged while Beam is imported, before any `setup`: only the launcher
  can filter it, and only when it runs `configure_process` before its first import of Beam.

Beam is imported inside the functions that need it, so this module is cheap to import.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

# Arrow's mimalloc pool keeps the pages it freed, so streaming a corpus through it grows RSS with the
# corpus; glibc's malloc, trimmed (`return_freed_memory`), gives them back.
ARROW_POOL_VARIABLE, ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL", "system"
APITOOLS_NOTE = "apitools not found, and bigquery client libraries"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_RETURNING = False


def configure_process() -> None:
    """The settings of a launching process; call before the first import of pyarrow or Beam. Idempotent."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, ARROW_POOL)  # inherited by the local runner's workers too
    root = logging.getLogger()
    if _not_beams_apitools_note not in root.filters:
        root.addFilter(_not_beams_apitools_note)
    connect_anonymously_to_emulator()  # the launcher reads and writes the store itself


def configure_worker() -> None:
    """The settings a process running DoFns needs before they touch storage or stream records. Idempotent."""
    connect_anonymously_to_emulator()
    return_freed_memory()
    quiet_nbformat_validation_log()


def _not_beams_apitools_note(record: logging.LogRecord) -> bool:
    """Beam warns at import, on the root logger, that apitools is missing whenever the gcp extra
    is not installed; only BigQuery needs it, and that source says so itself when it runs."""
    return not record.getMessage().startswith(APITOOLS_NOTE)


def return_freed_memory() -> None:
    """Make this process give freed memory back to the OS, so its RSS follows what it holds.

    glibc raises its mmap threshold after large blocks (file contents) are freed, then
    serves later ones from a heap it rarely trims, and Arrow's mimalloc pool keeps what
    it freed: streaming many large records grows RSS though little is held. A fixed
    threshold and Arrow's system pool stop that (a few percent of CPU). Idempotent.
    """
    global _RETURNING
    if _RETURNING:
        return
    _RETURNING = True
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # pyarrow's own default; the C++ one is the variable's
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 128 << 10)
    libc.mallopt(_M_TRIM_THRESHOLD, 128 << 10)


def release_freed_memory() -> None:
    """Give the OS the pages the allocators hold free, after a step that held many records
    (a spilled run, a Parquet row group): glibc trims only the top of its heap by itself,
    so the holes such a step leaves would stay resident for the rest of the run."""
    import pyarrow as pa

    pool = pa.default_memory_pool()
    pool.release_unused()  # the system pool's calls glibc's malloc_trim itself
    if pool.backend_name != "system" and (libc := _glibc()) is not None:
        libc.malloc_trim(0)  # Python's own large objects


@functools.cache
def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def connect_anonymously_to_emulator() -> None:
    """With STORAGE_EMULATOR_HOST set (a local Cloud Storage emulator), skip Beam's credential lookup.

    google-cloud-storage itself connects anonymously to an emulator; Beam first looks for
    Google credentials and, finding none, retries for about half a minute in every
    process. Marking its private credential cache (`auth._Credentials`) as filled with "none"
    gives the anonymous client at once. Without the variable nothing changes.
    """
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:  # no gcp extra: Beam has no GCS filesystem to configure
        return
    with auth._Credentials._credentials_lock:
        auth._Credentials._credentials = None
        auth._Credentials._credentials_init = True


class _DropNotebookValidationLog(logging.Filter):
    """nbformat logs each validation failure it meets while converting (an ERROR with the whole
    failing cell, through traitlets' logger) before it raises; the notebooks stage turns the raise
    into a Rejected, so the log line would only repeat it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Notebook JSON is")


def quiet_nbformat_validation_log() -> None:
    traitlets = logging.getLogger("traitlets")
    if not any(isinstance(f, _DropNotebookValidationLog) for f in traitlets.filters):
        traitlets.addFilter(_DropNotebookValidationLog())


def beam_option_parser():
    """An argument parser that knows every Beam pipeline option, to check flags before any work.

    Beam's PipelineOptions only warns about flags it cannot parse; its own parser class
    (`_BeamArgumentParser`, private) and each options class's `_add_argparse_args` (private) are
    the only way to list every option with Beam's types and choices."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in _all_option_classes(PipelineOptions):
        cls._add_argparse_args(parser)
    return parser


def _all_option_classes(base: type):
    seen, stack = {}, list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        seen.setdefault(str(cls), cls)
        stack.extend(cls.__subclasses__())
    return seen.values()


def run_on_fn_api_runner(pipeline, options):
    """Run `pipeline` on Beam's FnApiRunner as the DirectRunner's last step does (a copy of its tail:
    the runner needs the options as provision info, or its workers start without them)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)


def gcs_options(filesystem):
    """The pipeline options Beam's GCS filesystem builds its clients with (private: `_pipeline_options`)."""
    return filesystem._pipeline_options


def new_gcs_client(filesystem):
    """A GcsIO client as Beam's GCS filesystem builds one for each call (private: `_gcsIO()`), to be kept."""
    return filesystem._gcsIO()
