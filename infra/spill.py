"""Record streams on storage: how file contents wait for a global decision without a shuffle.

A stage that must see every record before it can decide (exact dedup, the sorted
shard writers, binarize) writes the records it holds to a spill file through
storage (local or gs://) and sends only small keys through the shuffle; a later
step streams the spill file back. Beam's local runner keeps every shuffled
PCollection in memory and Dataflow bills every shuffled byte, so contents cross no
shuffle at all this way, and memory is one batch per open stream.

A spill file is a sequence of frames: an 8-byte header (raw and compressed length,
little-endian) then LZ4-compressed pickles of records, one after another. Spill files are
scratch: their names are random and nothing in a dataset version depends on them.
"""

from __future__ import annotations

import heapq
import io
import pickle
import posixpath
import struct
import uuid
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa

from infra import storage

FRAME_BYTES = 64 << 10  # pickled records per frame: what a reader holds of one stream
MAX_FAN_IN = 64  # runs a merge reads at once (a frame each); more are first merged into longer runs
SCRATCH_DIR = "_scratch"  # under a version's staging directory; removed before the commit
_HEADER = struct.Struct("<II")
_CODEC = pa.Codec("lz4")


def scratch_path(scratch_dir: str, prefix: str) -> str:
    """A fresh spill file name under `scratch_dir` (unique per bundle and retry)."""
    return posixpath.join(scratch_dir, f"{prefix}-{uuid.uuid4().hex}.spill")


class SpillWriter:
    """Appends records to one spill file, a frame at a time; `close` returns how many were written."""

    def __init__(self, path: str):
        self.path = path
        self.out = storage.create_file(path)
        self.pending = io.BytesIO()
        self.count = 0

    def write(self, record: Any) -> None:
        pickle.dump(record, self.pending, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1
        if self.pending.tell() >= FRAME_BYTES:
            self._flush()

    def _flush(self) -> None:
        raw = self.pending.getvalue()
        if raw:
            packed = _CODEC.compress(raw, asbytes=True)
            self.out.write(_HEADER.pack(len(raw), len(packed)))
            self.out.write(packed)
            self.pending = io.BytesIO()

    def close(self) -> int:
        self._flush()
        self.out.close()
        return self.count


class BundleSpill:
    """A bundle's spill file, opened at its first record, so a bundle with none writes no file."""

    def __init__(self, scratch_dir: str, prefix: str):
        self.scratch_dir = scratch_dir
        self.prefix = prefix
        self.writer: SpillWriter | None = None

    def write(self, record: Any) -> str:
        """Append a record; return the path of the spill file that holds it."""
        if self.writer is None:
            self.writer = SpillWriter(scratch_path(self.scratch_dir, self.prefix))
        self.writer.write(record)
        return self.writer.path

    def close(self) -> str | None:
        """Close the file and return its path; None when nothing was written."""
        if self.writer is None:
            return None
        self.writer.close()
        path, self.writer = self.writer.path, None
        return path


def read_spill(path: str) -> Iterator[Any]:
    """The records of one spill file, in the order written, one frame in memory at a time."""
    with storage.open_file(path) as f:
        while header := f.read(_HEADER.size):
            raw_size, packed_size = _HEADER.unpack(header)
            frame = io.BytesIO(_CODEC.decompress(f.read(packed_size), raw_size, asbytes=True))
            while frame.tell() < raw_size:
                yield pickle.load(frame)


def write_sorted_run(path: str, records: Iterable) -> int:
    """Write already sorted records as one spill file (a run of an external sort)."""
    writer = SpillWriter(path)
    for record in records:
        writer.write(record)
    return writer.close()


def merge_runs(paths: Iterable[str], key: Callable[[Any], Any]) -> Iterator[Any]:
    """The records of several sorted runs, merged in `key` order, holding a frame of at most MAX_FAN_IN runs.

    Past MAX_FAN_IN runs, groups of them are first merged into longer runs beside them.
    Which run a record was in is left to chance, so the output is deterministic when
    `key` tells every two different records apart (as the writers' sort keys do).
    """
    paths = sorted(paths)
    while len(paths) > MAX_FAN_IN:
        longer = []
        for i in range(0, len(paths), MAX_FAN_IN):
            group = paths[i : i + MAX_FAN_IN]
            if len(group) == 1:
                longer += group
                continue
            merged = scratch_path(posixpath.dirname(group[0]), "merged")
            write_sorted_run(merged, heapq.merge(*(read_spill(p) for p in group), key=key))
            longer.append(merged)
        paths = longer
    return heapq.merge(*(read_spill(p) for p in paths), key=key)
