"""Spill files: records round-trip through frames, and merges of many runs stay sorted and complete."""

from __future__ import annotations

import operator
import random

from infra import spill


def test_records_round_trip_across_frames(tmp_path):
    records = [(i, "x" * (i % 5000)) for i in range(2000)]  # about 5 MB: many 64 KB frames
    path = str(tmp_path / "one.spill")
    assert spill.write_sorted_run(path, records) == len(records)
    assert list(spill.read_spill(path)) == records


def test_merging_more_runs_than_the_fan_in_goes_through_longer_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "MAX_FAN_IN", 16)
    rng = random.Random(7)
    keys = rng.sample(range(100_000), 3000)
    runs = [sorted(keys[i::40]) for i in range(40)]  # 40 runs > MAX_FAN_IN
    paths = []
    for i, run in enumerate(runs):
        paths.append(str(tmp_path / f"run-{i:02d}.spill"))
        spill.write_sorted_run(paths[-1], [(k, f"v{k}") for k in run])
    merged = list(spill.merge_runs(paths, key=operator.itemgetter(0)))
    assert merged == [(k, f"v{k}") for k in sorted(keys)]
    assert len(list(tmp_path.glob("merged-*.spill"))) == 3  # 40 runs → 3 longer ones (16 + 16 + 8) → merged


def test_a_bundle_spill_is_one_file_opened_at_its_first_record(tmp_path):
    empty = spill.BundleSpill(str(tmp_path), "empty")
    assert empty.close() is None and not list(tmp_path.iterdir())  # a bundle with no records writes no file
    bundle = spill.BundleSpill(str(tmp_path), "b")
    paths = {bundle.write(record) for record in ("one", "two", "three")}
    assert len(paths) == 1 and bundle.close() == next(iter(paths))
    assert list(spill.read_spill(next(iter(paths)))) == ["one", "two", "three"]
