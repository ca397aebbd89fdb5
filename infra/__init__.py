"""Infrastructure every layer above uses: storage (local or gs://), deterministic writers,
the dataset-version layout and store, and the accounting of what every stage read, kept and rejected.

It imports nothing of the project but `schemas`, so transforms, tokenizer training and the
trainer can write into a version without reaching up into the CLI's package.
"""

import logging
import os

# Arrow's C++ side (Parquet writers and readers, compression) takes its default pool once, at
# the first import of pyarrow, from this variable; its mimalloc pool keeps the pages it freed,
# so streaming a corpus through it grows RSS with the corpus. glibc's malloc, trimmed (see
# infra.spill.return_freed_memory), gives them back. Set before Beam (which imports pyarrow)
# is first imported (by infra.storage), and inherited by the local runner's worker processes.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def _not_beams_apitools_note(record: logging.LogRecord) -> bool:
    """Beam warns at import, on the root logger, that apitools is missing whenever the gcp extra
    is not installed; only BigQuery needs it, and that source says so itself when it runs."""
    return not record.getMessage().startswith("apitools not found, and bigquery client libraries")


logging.getLogger().addFilter(_not_beams_apitools_note)  # before the first import of Beam (infra.storage)
