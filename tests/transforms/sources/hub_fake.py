"""A Hugging Face Hub on 127.0.0.1 serving one dataset repository, in the Hub API's formats.

Enough of the API for huggingface_hub's HfFileSystem to list, size and read files: the
repository's revision info, the tree listing, paths-info, and file downloads with HTTP
Range requests (what a Parquet reader sends for a footer and a row group).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repo_id: str, files: dict[str, bytes], revision: str = "main"):
        self.repo_id, self.files, self.revision = repo_id, files, revision
        self.requests: list[tuple[str, str, str | None]] = []
        self.server = HTTPServer(host="127.0.0.1")
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        self.server.start()
        self.url = self.server.url_for("").rstrip("/")

    def close(self) -> None:
        self.server.clear()
        self.server.stop()

    def entries(self, folder: str, recursive: bool) -> list[dict]:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        found, dirs = [], set()
        for path, data in sorted(self.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                dirs.add(prefix + rest.split("/", 1)[0])
                continue
            for i in range(rest.count("/")):
                dirs.add(prefix + "/".join(rest.split("/")[: i + 1]))
            found.append(self.file_entry(path))
        return [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "path": d} for d in sorted(dirs)] + found

    def file_entry(self, path: str) -> dict:
        data = self.files[path]
        return {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": path}

    def handle(self, request: Request) -> Response:
        """The Hub's routes; a revision is the branch or tag given, or the commit id it points at."""
        self.requests.append((request.method, request.path, request.headers.get("Range")))
        api = f"/api/datasets/{self.repo_id}/"
        path = urllib.parse.unquote(request.path)
        for revision in (self.revision, COMMIT):
            if path == f"{api}revision/{revision}":
                return self.json({"id": self.repo_id, "sha": COMMIT, "private": False, "siblings": []})
            if path.startswith(f"{api}tree/{revision}"):
                folder = path[len(f"{api}tree/{revision}") :]
                return self.json(self.entries(folder, request.args.get("recursive") in ("true", "True", "1")))
            if path == f"{api}paths-info/{revision}":
                asked = request.form.getlist("paths") or json.loads(request.data or b"{}").get("paths", [])
                infos = [self.file_entry(p) for p in asked if p in self.files]
                infos += [
                    {"type": "directory", "oid": "0" * 40, "path": p}
                    for p in asked
                    if any(f.startswith(p + "/") for f in self.files)
                ]
                return self.json(infos)
            resolve = f"/datasets/{self.repo_id}/resolve/{revision}/"
            if path.startswith(resolve) and path[len(resolve) :] in self.files:
                return self.download(request, self.files[path[len(resolve) :]])
        if path.startswith(f"/datasets/{self.repo_id}/resolve/"):
            return Response("Entry not found", status=404, headers={"X-Error-Code": "EntryNotFound"})
        if path.startswith(f"{api}revision/"):
            return Response("Invalid rev id", status=404, headers={"X-Error-Code": "RevisionNotFound"})
        return self.json({"error": f"{path} not found"}, 404)

    @staticmethod
    def json(value, status: int = 200) -> Response:
        return Response(json.dumps(value), status=status, content_type="application/json")

    @staticmethod
    def download(request: Request, data: bytes) -> Response:
        headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            body = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(
                b"" if request.method == "HEAD" else body, status=206, headers=headers, content_type="application/octet-stream"
            )
        headers["Content-Length"] = str(len(data))
        return Response(
            b"" if request.method == "HEAD" else data, status=200, headers=headers, content_type="application/octet-stream"
        )
