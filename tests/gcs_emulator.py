"""The Cloud Storage emulator the gs:// tests run, made to honour generation preconditions.

Real Cloud Storage refuses a write or delete whose `ifGenerationMatch` does not match the
object's generation (0: the object must not exist) with 412 Precondition Failed: the
compare-and-swap the dataset lock is built on. gcp-storage-emulator ignores the
parameter, so this launcher wraps its insert and delete handlers with that check, made
atomic by one lock, and then starts it as its own command line would.

In memory, the emulator still serialises the metadata of every object in the bucket to
JSON after each write or delete, for a file that only a restart would read back: the
cost of one request grew with all that the session had stored (12 s of CPU over the
gs:// tests). With --in-memory that rewrite is skipped; what it serves is unchanged.

    python -m tests.gcs_emulator start --port 9023 --default-bucket corpus --in-memory
"""

from __future__ import annotations

import sys
import threading
from http import HTTPStatus

from gcp_storage_emulator import server
from gcp_storage_emulator.__main__ import main
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.storage import Storage

_CHECK_AND_WRITE = threading.Lock()


def generation(storage, bucket: str, name: str) -> int:
    try:
        return int(storage.get_file_obj(bucket, name).get("generation") or 0)
    except NotFound:
        return 0


def upload_name(request) -> str | None:
    if "name" in request.query:
        return request.query["name"][0]
    if request.query.get("uploadType", [""])[0] == "multipart":
        return request.data["meta"].get("name")
    return None  # a resumable upload's name arrives later; not used with preconditions here


def with_precondition(handler, name_of):
    def handle(request, response, storage, *args, **kwargs):
        expected = request.query.get("ifGenerationMatch")
        name = name_of(request) if expected else None
        if name is None:
            return handler(request, response, storage, *args, **kwargs)
        with _CHECK_AND_WRITE:
            if generation(storage, request.params["bucket_name"], name) != int(expected[0]):
                response.status = HTTPStatus.PRECONDITION_FAILED
                response.json(
                    {"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold."}}
                )
                return None
            return handler(request, response, storage, *args, **kwargs)

    return handle


insert = with_precondition(objects.insert, upload_name)
delete = with_precondition(objects.delete, lambda request: request.params["object_id"])
swap = {objects.insert: insert, objects.delete: delete}
server.HANDLERS = tuple((regex, {m: swap.get(h, h) for m, h in handlers.items()}) for regex, handlers in server.HANDLERS)
objects.insert = insert  # the router's fallback for uploads posted without the /upload prefix

if __name__ == "__main__":
    if "--in-memory" in sys.argv:
        Storage._write_config_to_file = lambda self: None  # read back only at start-up, which is over
    main(sys.argv[1:])
