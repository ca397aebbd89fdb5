"""`code-corpus run ... | head`: the summary printed after the commit stops quietly on a closed pipe."""

from __future__ import annotations

import os
import sys

from pipeline.commands import print_to_pipe, run_summary

MANIFEST = {
    "name": "sample",
    "version": "v0001",
    "counts": {"read": {"in": 3, "kept": 2, "rejected": {"binary": 1}, "stats": {}}},
    "flow": ["read"],
}


def test_the_summary_names_the_version_and_holds_the_counts_table():
    summary = run_summary(MANIFEST, "datasets/sample/v0001")
    assert "sample v0001 written to datasets/sample/v0001" in summary
    assert "read" in summary and "binary" in summary


def test_a_reader_gone_before_the_summary_is_written_loses_only_the_summary(monkeypatch):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`head`) has stopped
    stdout = open(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        print_to_pipe(run_summary(MANIFEST, "datasets/sample/v0001") * 1000)  # more than a pipe holds
        print("and the interpreter's own flush at exit finds nothing to fail on", flush=True)
    finally:
        monkeypatch.undo()
        stdout.close()
