"""`hf://` paths for Beam's FileSystems: Hugging Face Hub repositories, read-only, through huggingface_hub.

With this registered (importing the module is enough: Beam finds FileSystem subclasses by
scheme), `hf://datasets/<owner>/<name>@<revision>/<path>` is listed, matched by globs,
sized and opened exactly like a local or gs:// path, on the launcher and on every worker.
Reads go through huggingface_hub's HfFileSystem (ranged HTTP requests, so a Parquet
reader fetches only the footer and the row groups it reads). The endpoint and token are
huggingface_hub's own settings: HF_ENDPOINT (default https://huggingface.co) and HF_TOKEN
(or a cached `hf auth login`), read when a filesystem is made; a repository given a token
with `use_token` (the datasets source's `token_secret`, read in each process that reads
it) is read with that token instead.
"""

from __future__ import annotations

import os

from apache_beam.io.filesystem import BeamIOError, CompressedFile, CompressionTypes, FileMetadata, FileSystem

SCHEME = "hf"
PREFIX = SCHEME + "://"


_TOKENS: dict[str, str] = {}  # repository id → the token this process reads it with


def use_token(repo_id: str, token: str | None) -> None:
    """Read the repository `repo_id` (owner/name) with `token` in this process rather than HF_TOKEN
    (None: with huggingface_hub's own token again)."""
    if token is None:
        _TOKENS.pop(repo_id, None)
    else:
        _TOKENS[repo_id] = token


def repo_id_of(path: str) -> str:
    """`hf://datasets/owner/name@revision/...` → owner/name."""
    parts = path[len(PREFIX) :].split("/")
    return "/".join(parts[1:3]).split("@")[0]


def _hf_filesystem(token: str | None = None):
    try:
        from huggingface_hub import HfFileSystem
    except ImportError:
        raise ImportError("hf:// paths need huggingface_hub: pip install huggingface_hub") from None
    # Not cached across endpoints: HfFileSystem caches instances by its arguments.
    return HfFileSystem(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)


def resolve_commit(repo_id: str, revision: str) -> str:
    """The commit id a dataset's branch, tag or commit names now (the Hub's `sha` of that revision).

    The launcher asks once, and every path the run reads names that commit, so the workers
    read what the launcher listed even if the branch moves during the run.
    """
    _hf_filesystem()  # the same clear ImportError without huggingface_hub
    from huggingface_hub import HfApi

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=_TOKENS.get(repo_id))  # None: HF_TOKEN or login
    return api.dataset_info(repo_id, revision=revision).sha


class HubFileSystem(FileSystem):
    """Read-only Beam FileSystem over HfFileSystem; paths keep the `hf://` prefix."""

    @classmethod
    def scheme(cls):
        return SCHEME

    def _fs(self, path: str):
        """The HfFileSystem for `path`: with its repository's token from `use_token`, else huggingface_hub's own."""
        token = _TOKENS.get(repo_id_of(path))
        if not hasattr(self, "_hf"):
            self._hf = {}
        if token not in self._hf:
            self._hf[token] = _hf_filesystem(token)
        return self._hf[token]

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self):
        return False  # matched like an object store: list the prefix, then filter by the glob

    def _list(self, dir_or_prefix):
        """Every file under a prefix (a folder of the repository, or a name's start)."""
        fs = self._fs(dir_or_prefix)
        plain = dir_or_prefix[len(PREFIX) :]
        folder = plain if plain.endswith("/") else plain.rpartition("/")[0]
        try:
            found = fs.find(folder, detail=True)
        except FileNotFoundError:
            return
        except Exception as e:  # HTTP errors of the Hub (gated repository, bad token, unknown revision)
            raise BeamIOError(f"listing {dir_or_prefix} failed", {dir_or_prefix: e}) from e
        for path, info in sorted(found.items()):
            full = PREFIX + self._with_revision(path, plain)
            if full.startswith(dir_or_prefix) and info.get("type") == "file":
                yield FileMetadata(full, info.get("size") or 0)

    @staticmethod
    def _with_revision(found: str, asked: str) -> str:
        """HfFileSystem names files without the `@revision` the listing asked for; put it back."""
        repo_part, at, rest = asked.partition("@")
        if not at:
            return found
        revision = rest.split("/", 1)[0]
        if found.startswith(repo_part + "/"):
            return f"{repo_part}@{revision}/{found[len(repo_part) + 1 :]}"
        return found

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        raw = self._fs(path).open(path[len(PREFIX) :], "rb")
        if compression_type == CompressionTypes.AUTO:
            compression_type = CompressionTypes.detect_compression_type(path)
        return raw if compression_type == CompressionTypes.UNCOMPRESSED else CompressedFile(raw, compression_type)

    def exists(self, path):
        return self._fs(path).exists(path[len(PREFIX) :])

    def size(self, path):
        return self._fs(path).info(path[len(PREFIX) :])["size"]

    def metadata(self, path):
        return FileMetadata(path, self.size(path))

    def last_updated(self, path):
        raise BeamIOError("hf:// has no modification times", {path: NotImplementedError()})

    def checksum(self, path):
        return str(self._fs(path).info(path[len(PREFIX) :]).get("blob_id", ""))

    def _read_only(self, *paths):
        raise BeamIOError("hf:// is read-only here", {str(p): NotImplementedError() for p in paths})

    def mkdirs(self, path):
        self._read_only(path)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        self._read_only(path)

    def copy(self, source_file_names, destination_file_names):
        self._read_only(*destination_file_names)

    def rename(self, source_file_names, destination_file_names):
        self._read_only(*source_file_names)

    def delete(self, paths):
        self._read_only(*paths)
