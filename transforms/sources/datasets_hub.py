"""A Hugging Face Hub dataset as a file pattern: `hf://datasets/<repo_id>@<revision>/<data_dir>/**`.

`infra.hub_filesystem` serves `hf://` to Beam's FileSystems through huggingface_hub's
HfFileSystem, so listing and reading a Hub dataset go through `infra.storage` exactly as
local and gs:// files do; what is Hub-specific is only this pattern, the split filter, and
a gated dataset's token from Secret Manager (`use_hub_tokens`), read in each process that
reads the dataset, since Dataflow workers do not see the launcher's HF_TOKEN.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from infra import hub_filesystem
from schemas.datasets_config import HubDataset
from transforms.sources.secrets import read_secret

SCHEME = "hf://"


def hub_pattern(hub: HubDataset) -> str:
    """The glob of every file under the dataset's data_dir at its revision."""
    revision = urllib.parse.quote(hub.revision, safe="")  # refs/convert/parquet → refs%2Fconvert%2Fparquet
    root = posixpath.join(f"{SCHEME}datasets/{hub.repo_id}@{revision}", hub.data_dir.strip("/"))
    return posixpath.join(root, "**")


def in_split(path: str, hub: HubDataset) -> bool:
    """Whether a file belongs to the split, by the Hub's naming conventions.

    `data/python/train-00000-of-00206.parquet`, `train.jsonl.gz` and `train/part-0.parquet`
    are the `train` split's; an empty split takes every file.
    """
    if not hub.split:
        return True
    relative = path.split("@", 1)[-1].split("/", 1)[-1]
    parts = relative.split("/")
    if hub.split in parts[:-1]:
        return True
    return re.match(rf"{re.escape(hub.split)}([-._ 0-9]|$)", parts[-1]) is not None


def use_hub_tokens(hubs) -> None:
    """Read each Hub dataset's `token_secret` and read the dataset with it in this process (without one:
    huggingface_hub's own HF_TOKEN or login). Called where a process starts on the datasets: the
    launcher's listing, and each worker's `setup`."""
    for hub in hubs:
        if hub is not None:
            token = read_secret(hub.token_secret, hub.secret_api_endpoint) if hub.token_secret else None
            hub_filesystem.use_token(hub.repo_id, token)
