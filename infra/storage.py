"""Directory operations on local disk or cloud storage (`gs://...`), through Beam's FileSystems.

The Beam graph already writes every file through `FileSystems`; this module gives the
driver the few directory-level operations it needs around the graph (list, copy,
move, delete a tree) with one meaning on both kinds of store. Object stores have no
directories: a "directory" there is every object under a prefix, and moving one is a
copy of each object followed by a delete, so it is not atomic. The version store
(`infra/version.py`) orders its moves so that `manifest.json` arrives last and is
the commit marker.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import posixpath
import shutil
import stat
import tempfile
import threading
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError, CompressedFile, CompressionTypes
from apache_beam.io.filesystems import FileSystems

import infra.hub_filesystem  # noqa: F401  (registers hf:// with FileSystems)
from infra import runtime
from schemas.config import GLOB_CHARACTERS, ConfigError

COPY_BLOCK = 8 << 20
# Documents per record batch when their text is read: Arrow holds a batch's text, and more in
# decoding, so a batch's memory is this many times the documents' size (up to read.max_file_bytes
# each). At 512 rows of 10 kB files a report peaked 33 MB over its start; at 64 rows, 12.
TEXT_BATCH_ROWS = 64


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def check_reachable(path: str, what: str) -> None:
    """Fail before any work, naming the option, when no installed Beam filesystem serves `path`.

    Beam finds files by glob patterns it cannot escape, so a path holding glob
    characters would match other files (or none) and is refused too.
    """
    if GLOB_CHARACTERS & set(path):
        raise ConfigError(f"{what}: {path!r} holds one of {''.join(sorted(GLOB_CHARACTERS))}, which Beam reads as a pattern")
    if is_local(path):
        return
    try:
        FileSystems.get_filesystem(path)
    except Exception as e:  # Beam raises ValueError or BeamIOError(ImportError) by scheme
        hint = " (gs:// needs the gcp extra: pip install -e '.[gcp]')" if path.startswith("gs://") else ""
        raise ConfigError(f"{what}: no filesystem can reach {path!r}{hint}: {e}") from None


def join(path: str, *parts: str) -> str:
    return os.path.join(path, *parts) if is_local(path) else posixpath.join(path, *parts)


def absolute(path: str) -> str:
    """A local path made absolute; a cloud path as given."""
    return os.path.abspath(path) if is_local(path) else path


def exists(path: str) -> bool:
    """A file (object) at `path`."""
    return _gcs_io(path).exists(path) if path.startswith("gs://") else FileSystems.exists(path)


def is_dir(path: str) -> bool:
    """A local directory, or a prefix that holds at least one object."""
    if is_local(path):
        return os.path.isdir(path)
    return bool(match(posixpath.join(path, "**"), limit=1))  # one object answers; no need to list them all


def list_files(directory: str) -> list[str]:
    """Paths of every file under `directory`, relative to it with `/` separators, sorted."""
    if is_local(directory):
        found = []
        for root, _, files in os.walk(directory):
            found += [os.path.relpath(os.path.join(root, f), directory).replace(os.sep, "/") for f in files]
        return sorted(found)
    prefix = directory.rstrip("/") + "/"
    if prefix.startswith("gs://"):  # one listing of the prefix, on this thread's kept client
        return sorted(p[len(prefix) :] for p, _ in _gcs_io(prefix).list_files(prefix))
    return sorted(p[len(prefix) :] for p in match(prefix + "**"))


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """What a store's listing says of one entry: its kind, size and (Cloud Storage) md5, hex."""

    kind: str  # "file", or what a local entry is instead: "symlink", "fifo", "socket", "device"
    size: int
    md5: str | None = None


def list_file_metadata(directory: str) -> dict[str, StoredFile]:
    """{path relative to `directory`: StoredFile} of everything under it, from listings alone.

    No content is read and nothing is opened: locally each entry is `lstat`ed (links are
    not followed, FIFOs not opened); on Cloud Storage one listing request per thousand
    objects gives each size and the md5 the store computed when the object was written.
    """
    if is_local(directory):
        return dict(_local_metadata(directory, ""))
    if not directory.startswith("gs://"):
        return {rel: StoredFile("file", size) for rel, size in _matched_sizes(directory)}
    from google.cloud import storage as gcs  # imported only for gs:// paths

    bucket, _, prefix = directory[len("gs://") :].partition("/")
    prefix = prefix.rstrip("/") + "/"
    return {
        blob.name[len(prefix) :]: StoredFile("file", blob.size, base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None)
        for blob in gcs.Client().list_blobs(bucket, prefix=prefix)
    }


def _local_metadata(directory: str, rel: str) -> Iterator[tuple[str, StoredFile]]:
    with os.scandir(os.path.join(directory, rel)) as entries:
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _local_metadata(directory, path)
                continue
            st = entry.stat(follow_symlinks=False)
            yield path, StoredFile(entry_kind(st.st_mode), st.st_size)


def entry_kind(mode: int) -> str:
    """The kind of an lstat mode that is not a folder: file, symlink, fifo, socket, device, special-file."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special-file"


def _matched_sizes(directory: str) -> list[tuple[str, int]]:
    prefix = directory.rstrip("/") + "/"
    return [(m.path[len(prefix) :], m.size_in_bytes) for m in match_metadata(prefix + "**")]


def list_children(directory: str) -> list[str]:
    """Names directly under `directory` (files and directories), sorted."""
    if is_local(directory):
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    return sorted({p.split("/", 1)[0] for p in list_files(directory)})


# Bytes as stored: FileSystems would otherwise (de)compress by file extension (.gz, .zst, ...).
RAW = CompressionTypes.UNCOMPRESSED


def open_file(path: str, decompress: bool = False):
    """A readable file on any store: its bytes as stored, or decompressed by extension (.gz, .zst)."""
    compression = CompressionTypes.AUTO if decompress else RAW
    if path.startswith("gs://"):
        return _gcs_open(path, "rb", compression)
    return FileSystems.open(path, compression_type=compression)


def create_file(path: str, compress: bool = False):
    """A writable file on any store: the bytes as given, or compressed by extension (.gz, .zst)."""
    compression = CompressionTypes.AUTO if compress else RAW
    if path.startswith("gs://"):
        return _gcs_open(path, "wb", compression)
    return FileSystems.create(path, compression_type=compression)


def rename(source: str, target: str) -> None:
    """Move one file within a store (atomic locally)."""
    FileSystems.rename([source], [target])


def delete_files(paths: list[str]) -> None:
    """Delete files. On Cloud Storage a missing object is no error, and objects go a hundred per
    request (FileSystems.delete spends three requests on each: an existence check, a metadata
    read and a batch of one)."""
    cloud = [p for p in paths if p.startswith("gs://")]
    if len(cloud) < len(paths):
        FileSystems.delete([p for p in paths if not p.startswith("gs://")])
    if cloud:
        _raise_failed("Delete", {path: code for path, code in _gcs_io(cloud[0]).delete_batch(cloud) if code})


def match_metadata(pattern: str) -> list:
    """FileSystems metadata (path, size_in_bytes) of every file matching a glob pattern."""
    return FileSystems.match([pattern])[0].metadata_list


def read_bytes(path: str) -> bytes:
    with open_file(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    if is_local(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with create_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def parquet_file(path: str) -> Iterator[pq.ParquetFile]:
    """One Parquet file on any store, open: its footer (schema, row groups) is read, no data yet."""
    with open_file(path) as f:
        yield pq.ParquetFile(f)


def parquet_batches(
    path: str, columns: list[str], batch_rows: int, row_groups: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """Record batches of some columns (of some row groups) of one Parquet file on any store.

    Read on the calling thread: pyarrow's reader threads calling back into a Python
    file object from cloud storage abort the interpreter at exit.
    """
    with parquet_file(path) as f:
        yield from f.iter_batches(batch_size=batch_rows, columns=columns, row_groups=row_groups, use_threads=False)


def copy_file(source: str, target: str) -> None:
    """Stream one file between any two stores (FileSystems.copy needs both on one)."""
    if is_local(target):
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with open_file(source) as src, create_file(target) as dst:
        shutil.copyfileobj(src, dst, COPY_BLOCK)


def copy_tree(source: str, target: str) -> None:
    """Copy every file under `source` to the same relative path under `target`.

    Within Cloud Storage the store copies the objects itself, a hundred per request, and no
    byte travels through this process.
    """
    files = list_files(source)
    if source.startswith("gs://") and target.startswith("gs://"):
        pairs = [(join(source, rel), join(target, rel)) for rel in files]
        _raise_failed("Copy", {src: code for src, _, code in _gcs_io(source).copy_batch(pairs) if code})
        return
    for rel in files:
        copy_file(join(source, rel), join(target, rel))


def delete_tree(path: str) -> None:
    """Remove a directory (or prefix) and all it holds; nothing there is not an error."""
    if is_local(path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    else:  # the objects listed, not a prefix delete, which only logs the objects it failed to delete
        delete_files([join(path, f) for f in list_files(path)])


def move_tree(source: str, target: str, last: tuple[str, ...] = (), replace: bool = True) -> None:
    """Replace `target` with `source` (with `replace=False`, on an object store: move into it).

    Locally this is one rename, atomic. On an object store each object is copied and
    deleted, and the relative paths in `last` are moved after all others, so their
    arrival marks the move complete.
    """
    if not is_local(target) and replace:  # the marker goes first, so a half-deleted target never looks complete
        delete_files([join(target, f) for f in last])
    if replace or is_local(target):
        delete_tree(target)
    if is_local(source):
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        os.replace(source, target)
        return
    if exists(source):  # a single object, not a prefix
        FileSystems.rename([source], [target])
        return
    files = list_files(source)
    # Two calls: a batch of renames runs in no set order and reports failures only at its
    # end, so `last` moves only once everything else has.
    for group in ([f for f in files if f not in last], [f for f in last if f in files]):
        if group:
            FileSystems.rename([join(source, f) for f in group], [join(target, f) for f in group])
    delete_tree(source)


def make_dirs(path: str) -> None:
    """Create a local directory; object stores need none."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)


class LocalCopy:
    """A local directory standing in for `path` while a library that needs real files works.

    For a local `path` it is `path` itself. For a cloud path it is a temporary
    directory, filled from `path` (the relative paths in `fetch`) on entry; the caller
    uploads what it wants back with `copy_tree`. The temporary directory goes on exit.
    """

    def __init__(self, path: str, fetch: tuple[str, ...] = ()):
        self.path, self.fetch, self._tmp = path, fetch, None

    def __enter__(self) -> str:
        if is_local(self.path):
            return self.path
        self._tmp = tempfile.mkdtemp(prefix="code-corpus-")
        for rel in self.fetch:
            source = join(self.path, rel)
            if is_dir(source):
                copy_tree(source, os.path.join(self._tmp, rel))
            elif exists(source):
                copy_file(source, os.path.join(self._tmp, rel))
        return self._tmp

    def __exit__(self, *exc) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def match(pattern: str, limit: int | None = None) -> list[str]:
    """Paths matching a FileSystems glob pattern (at most `limit` of them)."""
    return [m.path for m in FileSystems.match([pattern], limits=[limit] if limit else None)[0].metadata_list]


_GCS_CLIENTS = threading.local()


def _gcs_io(path: str):
    """Beam's Cloud Storage client for `path`, with the options and retries FileSystems gives it:
    one per thread, kept while those options (and the emulator's address, if any) stay the same.

    FileSystems builds a new client for every call, and with it a new connection (a TLS
    handshake on the real service) and a background request for the bucket's metadata: a
    read cost three requests and 11 ms of CPU on a local server, 4 ms on a kept client.
    """
    filesystem = FileSystems.get_filesystem(path)
    options = runtime.gcs_options(filesystem)
    endpoint = os.environ.get("STORAGE_EMULATOR_HOST")  # the client sends its requests where this said when it was built
    kept = getattr(_GCS_CLIENTS, "kept", None)
    if kept is None or kept[0] is not options or kept[1] != endpoint:
        kept = _GCS_CLIENTS.kept = (options, endpoint, runtime.new_gcs_client(filesystem))
    return kept[2]


def _gcs_open(path: str, mode: str, compression: str):
    """FileSystems.open / FileSystems.create of a gs:// path, on this thread's kept client."""
    if compression == CompressionTypes.AUTO:
        compression = CompressionTypes.detect_compression_type(path)
    raw = _gcs_io(path).open(path, mode, mime_type=CompressionTypes.mime_type(compression))
    return raw if compression == CompressionTypes.UNCOMPRESSED else CompressedFile(raw, compression_type=compression)


def _raise_failed(operation: str, failed: dict) -> None:
    """Raise as FileSystems does when some objects of a batch failed (their HTTP status codes)."""
    if failed:
        raise BeamIOError(f"{operation} operation failed", failed)


def _gcs_blob(path: str):
    """The google-cloud-storage blob at a gs:// path (the gcp extra brings the library)."""
    from google.cloud import storage as gcs  # imported only for gs:// paths

    bucket, _, name = path[len("gs://") :].partition("/")
    return gcs.Client().bucket(bucket).blob(name)


def create_if_absent(path: str, data: bytes) -> int | None:
    """Create an object only if none is at `path`, atomically (the store's compare-and-swap).

    On Cloud Storage this is a write with the precondition ifGenerationMatch=0; returns the
    new object's generation, or None when an object was already there. gs:// only.
    """
    from google.api_core.exceptions import PreconditionFailed

    blob = _gcs_blob(path)
    try:
        blob.upload_from_string(data, if_generation_match=0)
    except PreconditionFailed:
        return None
    return blob.generation


def replace_if_generation(path: str, data: bytes, generation: int) -> int | None:
    """Overwrite the object at `path` only if it is still the one of `generation` (ifGenerationMatch);
    the new generation, or None when another write came first. gs:// only."""
    from google.api_core.exceptions import NotFound, PreconditionFailed

    blob = _gcs_blob(path)
    try:
        blob.upload_from_string(data, if_generation_match=generation)
    except (NotFound, PreconditionFailed):
        return None
    return blob.generation


def read_with_generation(path: str) -> tuple[bytes, int] | None:
    """(content, generation) of the object at `path`, read as one generation; None when there is none. gs:// only."""
    from google.api_core.exceptions import NotFound, PreconditionFailed

    blob = _gcs_blob(path)
    try:
        blob.reload()
        generation = blob.generation  # before the download, which resets it from the reply's headers
        return blob.download_as_bytes(if_generation_match=generation), generation
    except (NotFound, PreconditionFailed):  # gone, or replaced between the two requests: read as "none"
        return None


def delete_if_generation(path: str, generation: int) -> bool:
    """Delete the object at `path` only if it is still the one of `generation`; whether it was."""
    from google.api_core.exceptions import NotFound, PreconditionFailed

    try:
        _gcs_blob(path).delete(if_generation_match=generation)
    except (NotFound, PreconditionFailed):
        return False
    return True
