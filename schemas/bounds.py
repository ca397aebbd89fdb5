"""Upper bounds of config numbers whose size is a cost: files made, memory held per worker.

A lower bound says what makes sense; an upper one stops a typo (an extra three zeros)
from making a billion empty files or holding gigabytes before the first record is read.
"""

from __future__ import annotations

from schemas.errors import ConfigError

# Every shard or partition is a file and a unit of work, made even when empty, and shard
# names carry five digits: 10,000 shards of the paper's 216 GB corpus are 20 MB each.
MAX_SHARDS = 10_000
# A file's content is read whole into one worker's memory.
MAX_READ_BYTES = 2**31 - 1
# A MinHash signature holds `permutations` numbers per file (BigCode uses 256, datatrove 112).
MAX_PERMUTATIONS = 4096
# Rows a reader decodes at a time, each up to its file-size bound.
MAX_BATCH_ROWS = 1_000_000
# A timeout or wait in seconds: past a day nothing is worth waiting for, and far past it a
# socket's or a timer's C time value overflows in the middle of a run.
MAX_WAIT_SECONDS = 86_400


def check_at_most(section: object, prefix: str, bounds: dict[str, int]) -> None:
    """Refuse a value above the bound its use allows, naming the key and the bound."""
    for name, most in bounds.items():
        if getattr(section, name) > most:
            key = f"{prefix}.{name}" if prefix else name  # a nested section's errors get its path prefixed
            raise ConfigError(f"{key} must be at most {most:,}, got {getattr(section, name):,}")
