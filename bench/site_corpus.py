"""A benchmark corpus from the installed site-packages (used by bench_peer.py and bench_scale.py).

Every top-level package becomes a repository `c<copy>-<package>` with an MIT LICENSE
file and a star count in `repos.json`, copied until the corpus holds the asked size:
real Python, licensed the way the pipeline keeps, with exact duplicates across copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

MIT_TEXT = """MIT License

Copyright (c) 2024 The Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
MAX_FILE_BYTES = 1_000_000  # read.max_file_bytes' default; larger files are left out of the corpus
REPOS_DIR = "repos"
METADATA_FILE = "repos.json"


def stars_of(repo: str) -> int:
    return int(hashlib.sha256(repo.encode()).hexdigest()[:4], 16) % 1000


def list_py_files(root: str, max_bytes: int) -> list[tuple[str, int]]:
    """(path relative to root, size) of sorted .py files, up to max_bytes in total."""
    files, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not name.endswith(".py") or os.path.islink(path) or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            if size > MAX_FILE_BYTES:
                continue
            if total + size > max_bytes:
                return files
            files.append((os.path.relpath(path, root), size))
            total += size
    return files


def build_corpus(root: str, work: str, mb: float, copies: int, distinct: bool = False) -> dict:
    """Copy the files into `copies` folders of repositories; return the corpus' size.

    With `distinct`, each copy's files start with a `# copy N` line, so no two copies
    are duplicates (the corpus grows for every stage, dedup included).
    """
    files = list_py_files(root, int(mb * 1e6 / copies))
    repos_dir = os.path.join(work, REPOS_DIR)
    metadata, count, size = {}, 0, 0
    for copy in range(copies):
        header = f"# copy {copy}\n".encode() if distinct else b""
        for rel, nbytes in files:
            top = rel.split(os.sep, 1)[0].removesuffix(".py")
            repo = f"c{copy}-{top}"
            target = os.path.join(repos_dir, repo, rel)
            if repo not in metadata:
                metadata[repo] = {"stars": stars_of(repo), "origin": "github"}
                os.makedirs(os.path.join(repos_dir, repo))
                with open(os.path.join(repos_dir, repo, "LICENSE"), "w") as f:
                    f.write(MIT_TEXT)
                count, size = count + 1, size + len(MIT_TEXT)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(os.path.join(root, rel), "rb") as src, open(target, "wb") as dst:
                dst.write(header)
                shutil.copyfileobj(src, dst)
            count, size = count + 1, size + nbytes + len(header)
    with open(os.path.join(work, METADATA_FILE), "w") as f:
        json.dump(metadata, f, sort_keys=True)
    return {"files": count, "bytes": size, "repos": len(metadata), "distinct_py_files": len(files)}


def warm_cache(folder: str) -> None:
    """Read every file once, so each measured run starts with the same warm page cache."""
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(1 << 20):
                    pass
