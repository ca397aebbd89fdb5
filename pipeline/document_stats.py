"""What report.html shows of a version's documents, counted by the documents' writer as it writes them.

Each documents shard's writer counts the row groups it writes (`DocumentStats.add`, on
Arrow: the text's UTF-8 length without a copy); the run sums the shards into the
manifest's `document_stats`. So the report never reads the documents' text for its
figures (at 400 MB that took each stage's report 0.7 s; on an object store it would pull
the whole corpus through the launching process).
"""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import pyarrow as pa

FIGURES = ("bytes_per_lang", "docs_per_lang", "star_buckets", "length_bins")
NUMBERED = ("star_buckets", "length_bins")  # keyed by a number (JSON keys are strings)


class DocumentStats:
    """Bytes and documents per language (a document without one: its kind), documents per
    star bucket, and documents per log2 bin of their length in bytes."""

    def __init__(self):
        self.figures: dict[str, collections.Counter] = {name: collections.Counter() for name in FIGURES}

    def add(self, table: pa.Table | pa.RecordBatch) -> None:
        """Count one row group (or record batch) of documents."""
        import pyarrow.compute as pc  # here: 60 ms of import every worker would pay, only the documents' writers need it

        sizes = pc.binary_length(table.column("text")).to_pylist()
        langs, kinds = table.column("lang").to_pylist(), table.column("kind").to_pylist()
        bytes_per_lang, docs_per_lang = self.figures["bytes_per_lang"], self.figures["docs_per_lang"]
        buckets, bins = self.figures["star_buckets"], self.figures["length_bins"]
        for lang, kind, size, bucket in zip(langs, kinds, sizes, table.column("star_bucket").to_pylist()):
            label = lang or kind
            bytes_per_lang[label] += size
            docs_per_lang[label] += 1
            bins[max(0, int(math.log2(size))) if size else 0] += 1
            if bucket is not None:
                buckets[bucket] += 1

    def to_json(self) -> dict:
        return {name: {str(k): n for k, n in sorted(counts.items())} for name, counts in self.figures.items()}

    @classmethod
    def summed(cls, parts: Iterable[dict]) -> "DocumentStats":
        """The stats of several shards (each as `to_json` gave it)."""
        total = cls()
        for part in parts:
            for name in FIGURES:
                for key, n in part.get(name, {}).items():
                    total.figures[name][int(key) if name in NUMBERED else key] += n
        return total
