"""Crawl state: what a network crawl has listed and fetched, so a killed crawl resumes.

    <state>/pages/<sha256>.json      one answered listing request (a search or project page):
                                     its repositories, the next page, the total it reported
    <state>/listing.jsonl.zst        the listing the fetch step reads: one repository (or listing
                                     failure) per line, sorted; rewritten by every run
    <state>/repos/<id>.jsonl.zst     one repository's outcome: a header with its pinned commit,
                                     then every record read from its archive at that commit (or
                                     the permanent reason it was rejected)

Every file is written under a temporary name and renamed, so a file that exists is
complete. A restarted crawl asks the API only for pages and repositories that have no
file yet, and replays the rest from here, record for record: the same crawl at the same
commits yields the same records. Failures that may pass (5xx after all retries, a spent
request budget) leave no file, so the next run tries them again.

The state directory is named by the settings that change what a crawl reads (`crawl_key`),
not by the version: versions are staged in directories a failed run removes, and a crawl
of days must outlive them. Paths go through Beam's FileSystems, so state can live on GCS.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import posixpath
import uuid
from typing import Any, Iterable, Iterator

from infra import storage
from schemas.records import Rejected, RepoFile, RepoSnapshot, flat_row, record_id

RECORD_TYPES = {cls.__name__: cls for cls in (RepoFile, Rejected, RepoSnapshot)}
LISTING = "listing.jsonl.zst"  # zstd: Beam reads and writes it by its extension


def _sorted_json_encoder():
    """What json.dumps(item, sort_keys=True) writes, from one encoder made once: json.dumps makes a
    new one per call, which is most of its cost on a short line (a million-line listing). Without
    the circular-reference check, whose state a failed call would leave behind in a shared encoder."""
    from json import encoder

    if encoder.c_make_encoder is None:  # no C accelerator: the public encoder, same bytes
        return json.JSONEncoder(sort_keys=True).encode
    default = json.JSONEncoder().default  # raises the TypeError json.dumps raises
    make = encoder.c_make_encoder(None, default, encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True)
    return lambda item: "".join(make(item, 0))


encode_sorted = _sorted_json_encoder()


def crawl_key(source: str, section: Any, max_file_bytes: int, max_notebook_bytes: int | None = None) -> str:
    """Twelve hex digits over the settings that decide what the crawl's records are.

    Left out: the token, the request pacing and budget, the listing's size and date
    range (each listing request is keyed by its own URL), so changing those resumes
    the same state instead of starting over.
    """
    facts = {
        "source": source,
        "base_url": section.base_url,
        "languages": list(section.languages),
        "licenses": list(section.licenses),
        "commits_until": section.commits_until,
        "limits": [section.limits.max_archive_bytes, section.limits.max_uncompressed_bytes, section.limits.max_members],
        "max_file_bytes": max_file_bytes,
        "max_notebook_bytes": max_notebook_bytes,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def record_to_json(record: RepoFile | Rejected | RepoSnapshot) -> dict:
    return {"type": type(record).__name__, **flat_row(record)}


def record_from_json(data: dict) -> RepoFile | Rejected | RepoSnapshot:
    fields = dict(data)
    return RECORD_TYPES[fields.pop("type")](**fields)


class CrawlState:
    """One crawl's state directory (local or any Beam filesystem)."""

    def __init__(self, path: str):
        self.path = path

    def _file(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    # -- listing -------------------------------------------------------------------------

    def page(self, request: str) -> dict | None:
        """The saved answer to a listing request (its canonical URL), or None."""
        path = self._file("pages", hashlib.sha256(request.encode()).hexdigest() + ".json")
        if not storage.exists(path):
            return None
        with storage.open_file(path, decompress=True) as f:
            return json.loads(f.read().decode("utf-8"))

    def save_page(self, request: str, answer: dict) -> None:
        path = self._file("pages", hashlib.sha256(request.encode()).hexdigest() + ".json")
        _write_atomically(path, [encode_sorted({"request": request, **answer})])

    @property
    def listing_path(self) -> str:
        return self._file(LISTING)

    def write_listing(self, items: Iterable[dict]) -> None:
        _write_atomically(self.listing_path, map(encode_sorted, items))

    def read_listing(self) -> Iterator[dict]:
        """The listing's lines as dicts; each chunk of lines is parsed in one call, as one JSON array."""
        with storage.open_file(self.listing_path, decompress=True) as f:
            for lines in _line_chunks(f):
                yield from json.loads(b"[" + b",".join(lines) + b"]")

    # -- repositories --------------------------------------------------------------------

    def repo_file(self, source: str, repo: str) -> str:
        return self._file("repos", record_id(source, repo) + ".jsonl.zst")

    def load_repo(self, source: str, repo: str) -> Iterator[RepoFile | Rejected | RepoSnapshot] | None:
        """The saved records of a fetched repository, or None when it was not fetched yet."""
        path = self.repo_file(source, repo)
        if not storage.exists(path):
            return None
        return self._replay(path)

    @staticmethod
    def _replay(path: str) -> Iterator[RepoFile | Rejected | RepoSnapshot]:
        with storage.open_file(path, decompress=True) as f:
            lines = _lines(f)
            next(lines)  # the header
            for line in lines:
                yield record_from_json(json.loads(line))

    def repo_writer(self, source: str, repo: str, header: dict) -> "RepoWriter":
        return RepoWriter(self.repo_file(source, repo), header)


class RepoWriter:
    """Writes one repository's records as they are read; the file appears only on `commit`."""

    def __init__(self, path: str, header: dict):
        self.path = path
        self.tmp = f"{path}.{uuid.uuid4().hex}.tmp.zst"
        self._file = storage.create_file(self.tmp, compress=True)
        self._write(header)

    def _write(self, data: dict) -> None:
        self._file.write((encode_sorted(data) + "\n").encode("utf-8"))

    def add(self, record: RepoFile | Rejected | RepoSnapshot) -> None:
        self._write(record_to_json(record))

    def commit(self) -> None:
        self._file.close()
        storage.rename(self.tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        storage.delete_files([self.tmp])


def _line_chunks(f, chunk_bytes: int = 1 << 20) -> Iterator[list[bytes]]:
    """The lines of a file from FileSystems.open, without their newlines, a chunk's worth
    at a time (its compressed files are not iterable, and their readline costs microseconds a line:
    a million-line listing reads in chunks)."""
    rest = b""
    while chunk := f.read(chunk_bytes):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest]


def _lines(f) -> Iterator[bytes]:
    for lines in _line_chunks(f):
        yield from lines


def _write_atomically(path: str, lines: Iterable[str], batch_lines: int = 4096) -> None:
    """Write the lines under a temporary name, then rename; a compressed file's write costs
    microseconds a call, so lines go in batches."""
    tmp = f"{path}.{uuid.uuid4().hex}.tmp" + (".zst" if path.endswith(".zst") else "")
    with storage.create_file(tmp, compress=True) as f:
        lines = iter(lines)
        while batch := list(itertools.islice(lines, batch_lines)):
            f.write(("\n".join(batch) + "\n").encode("utf-8"))
    storage.rename(tmp, path)
