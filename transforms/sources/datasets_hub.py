"""A Hugging Face Hub dataset as a file pattern: `hf://datasets/<repo_id>@<revision>/<data_dir>/**`.

`infra.hub_filesystem` serves `hf://` to Beam's FileSystems through huggingface_hub's
HfFileSystem, so listing and reading a Hub dataset go through `infra.storage` exactly as
local and gs:// files do; what is Hub-specific is only this pattern and the split filter.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from schemas.datasets_config import HubDataset

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
