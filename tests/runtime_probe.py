"""A stage that reports the settings of the process running it, for tests/pipeline/test_runtime.py
(in a module of the `tests` package, so that the local runner's workers can import it)."""

from __future__ import annotations

import os

from transforms.base import RecordFn


class WorkerSettingsFn(RecordFn):
    """Reports what the process running it has, after StageDoFn's setup (configure_worker)."""

    stage = "worker-settings"

    def __call__(self, record):
        import pyarrow as pa
        from apache_beam.internal.gcp import auth

        return {
            "another_process": os.getpid() != record,
            "arrow_variable": os.environ.get("ARROW_DEFAULT_MEMORY_POOL"),  # from its start: nothing sets it here
            "pyarrow_pool": pa.default_memory_pool().backend_name,
            "credentials_cache_filled": auth._Credentials._credentials_init,
        }
