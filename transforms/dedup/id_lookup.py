"""A join on record ids by side-input lookup, with a fixed-size bitmap in front of it.

Records that are not in spill files (near-dedup's reading of earlier versions'
signatures) find the decisions about their ids (candidate edges) by looking each id up
in an `AsMultiMap` side input, so no record crosses a shuffle; records in spill files
get theirs by a join on ids instead (transforms/dedup/near.py). Each lookup is a state
request, and Beam's local runner weighs every answer it caches (a few milliseconds
each), while most ids are in no decision. So a 1 MiB bitmap of the decided ids'
hashes (one bit each, ORed over bundles: the same bits whatever the bundling) goes
first: an id whose bit is clear is surely absent and skips the lookup. The bitmap's
size does not grow with the corpus; with many ids it only lets more lookups through.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam
import numpy as np

BITMAP_BITS = 1 << 23  # 1 MiB


def id_bit(record_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(record_id.encode("utf-8"), digest_size=8).digest(), "little") % BITMAP_BITS


class IdBitmapFn(beam.CombineFn):
    """Record ids → a bitmap with each id's bit set."""

    def create_accumulator(self):
        return np.zeros(BITMAP_BITS // 8, dtype=np.uint8)

    def add_input(self, bitmap, record_id):
        bit = id_bit(record_id)
        bitmap[bit >> 3] |= np.uint8(1 << (bit & 7))
        return bitmap

    def merge_accumulators(self, bitmaps):
        return np.bitwise_or.reduce(list(bitmaps))

    def extract_output(self, bitmap):
        return bitmap


def side_inputs(keyed: beam.PCollection, label: str) -> tuple:
    """(id, value) pairs → (AsMultiMap of them, AsSingleton bitmap of their ids), for `lookup`."""
    bitmap = keyed | f"{label}Ids" >> beam.Keys() | f"{label}Bitmap" >> beam.CombineGlobally(IdBitmapFn())
    return beam.pvalue.AsMultiMap(keyed), beam.pvalue.AsSingleton(bitmap)


def lookup(values_of, bitmap: np.ndarray, record_id: str) -> list:
    """The values for an id: none without a lookup when its bit is clear."""
    bit = id_bit(record_id)
    if not bitmap[bit >> 3] & (1 << (bit & 7)):
        return []
    return list(values_of[record_id])
