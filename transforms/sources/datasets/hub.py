"""A Hugging Face Hub dataset's files, chosen as the Hub's own dataset configs choose them.

In the launcher, once:

1. The revision (branch, tag or commit) is resolved to a commit id, and every path the run
   reads names it (`hf://datasets/<repo_id>@<commit>/<path>`), so every worker reads
   what the launcher listed even if the branch moves meanwhile.
2. When the README's YAML header declares `configs`, the files are those of the chosen
   config's `data_files` for the split (`config`, else the one marked `default`, named
   `default`, or the only one), below `data_dir` when one is given.
3. Otherwise every data file under `data_dir`; where file names carry a split (the Hub's
   conventions: `data/<split>-00000-of-00003.parquet`, a `train/` folder, `test-*`,
   `*_valid.*`), the split's files only. Where no name carries one, as in The Stack's
   `data/python/data-00000-of-00144.parquet`, every file is the `train` split, as on the Hub.

`hf://` is served to Beam's FileSystems by `infra.hub_filesystem`, so the files are then
read exactly as local or gs:// ones.

A gated dataset's token comes from Secret Manager (`use_hub_tokens`), read in each process
that reads the dataset, since Dataflow workers do not see the launcher's HF_TOKEN.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Callable

import yaml

from infra import hub_filesystem, storage
from infra.hub_filesystem import PREFIX, resolve_commit
from schemas.datasets_config import HubDataset
from schemas.errors import ConfigError
from transforms.sources.secret_manager import read_secret

SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}
SEP = "[-._ 0-9]"  # what may stand beside a split keyword in a name
SHARDED = re.compile(r"data/(\w+)-[0-9]{5}-of-[0-9]{5}[^/]*\.[^/]*")
DEFAULT_SPLIT = "train"  # the split of files whose names carry none, as the Hub has it


@dataclasses.dataclass(frozen=True)
class HubListing:
    commit: str
    root: str  # hf://datasets/<repo_id>@<commit>/
    files: list[tuple[str, int]]  # (path in the repository, size), sorted
    config: str | None  # the README config the files come from; None: found by name


def list_hub(hub: HubDataset, where: str, is_data: Callable[[str], bool]) -> HubListing:
    """The dataset's files at one commit (see the module docstring); a choice that selects nothing fails."""
    try:
        commit = resolve_commit(hub.repo_id, hub.revision)
    except ImportError:
        raise
    except Exception as e:  # huggingface_hub's HTTP errors: no such repository or revision, gated, bad token
        problem = f"{type(e).__name__}: {e}"
        raise ConfigError(f"{where}.hub.revision: cannot resolve {hub.revision!r} of {hub.repo_id!r}: {problem}") from None
    root = f"{PREFIX}datasets/{hub.repo_id}@{commit}/"
    configs = readme_configs(root, f"{where}.hub")
    if configs:
        config = chosen_config(configs, hub, where)
        name = str(config.get("config_name", "default"))
        files = config_files(root, config, hub, where)
        if hub.data_dir:
            files = [f for f in files if f[0].startswith(hub.data_dir.strip("/") + "/")]
        unknown = [path for path, _ in files if not is_data(path)]
        if unknown:
            kinds = ".parquet or .jsonl (.gz, .zst)"
            raise ConfigError(f"{where}: config {name!r} selects {unknown[0]!r}, not {kinds}; set {where}.format")
    else:
        name, files = None, split_files([f for f in listed(root, hub.data_dir.strip("/")) if is_data(f[0])], hub, where)
    if not files:
        folder = f"data_dir {hub.data_dir!r}"
        raise ConfigError(f"{where}.hub: no data file of split {hub.split!r} in {hub.repo_id}@{commit} ({folder})")
    return HubListing(commit, root, sorted(files), name)


def listed(root: str, folder: str) -> list[tuple[str, int]]:
    """(path in the repository, size) of every file under a folder of it."""
    prefix = root + (folder + "/" if folder else "")
    return [(m.path[len(root) :], m.size_in_bytes) for m in storage.match_metadata(prefix + "**")]


# ---- the README's configs ----------------------------------------------------------------------


def readme_configs(root: str, where: str) -> list[dict]:
    """The `configs` of the README's YAML header; [] when there is no README, header or configs."""
    try:
        with storage.open_file(root + "README.md") as f:
            text = f.read(1 << 20).decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    match = re.match(r"---\r?\n(.*?)\r?\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return []
    try:
        header = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: the dataset's README.md header is not YAML: {e}") from None
    configs = header.get("configs") if isinstance(header, dict) else None
    if configs is None:
        return []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise ConfigError(f"{where}: the dataset's README.md `configs` is not a list of mappings")
    return configs


def chosen_config(configs: list[dict], hub: HubDataset, where: str) -> dict:
    names = [str(c.get("config_name", "default")) for c in configs]
    if hub.config is not None:
        if hub.config not in names:
            raise ConfigError(f"{where}.hub.config: {hub.config!r} is not one of the README's configs {names}")
        return configs[names.index(hub.config)]
    marked = [c for c in configs if c.get("default") is True] or [c for c, n in zip(configs, names) if n == "default"]
    if marked or len(configs) == 1:
        return (marked or configs)[0]
    raise ConfigError(f"{where}.hub.config: the README declares configs {names} and marks none as default; name one")


def split_patterns(data_files, where: str) -> dict[str, list[str]]:
    """{split: patterns} of a config's `data_files` (a pattern, a list of them, or split/path entries)."""
    if isinstance(data_files, str):
        return {DEFAULT_SPLIT: [data_files]}
    if isinstance(data_files, list) and all(isinstance(p, str) for p in data_files):
        return {DEFAULT_SPLIT: data_files}
    entries = data_files.items() if isinstance(data_files, dict) else None
    if isinstance(data_files, list) and all(isinstance(e, dict) and "split" in e and "path" in e for e in data_files):
        entries = [(e["split"], e["path"]) for e in data_files]
    if entries is None:
        raise ConfigError(f"{where}: a README config's data_files is {data_files!r:.80}, not patterns or split/path entries")
    found = {}
    for split, paths in entries:
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ConfigError(f"{where}: a README config's data_files path for {split!r} is not a pattern or a list of them")
        found[str(split)] = paths
    return found


def config_files(root: str, config: dict, hub: HubDataset, where: str) -> list[tuple[str, int]]:
    """The files of a README config's split: its data_files patterns (below its data_dir), or by name under data_dir."""
    base = str(config.get("data_dir") or "").strip("/")
    if "data_files" not in config:
        return split_files(listed(root, base), hub, where)
    by_split = split_patterns(config["data_files"], f"{where}.hub")
    if hub.split and hub.split not in by_split:
        name = config.get("config_name", "default")
        raise ConfigError(f"{where}.hub.split: {hub.split!r} is not a split of config {name!r} (its splits: {sorted(by_split)})")
    patterns = [posixpath.join(base, p) for split, ps in by_split.items() if not hub.split or split == hub.split for p in ps]
    found = {}
    for pattern in patterns:
        regex = glob_regex(pattern)
        found |= {path: size for path, size in listed(root, static_folder(pattern)) if regex.fullmatch(path)}
    return sorted(found.items())


def static_folder(pattern: str) -> str:
    """The folder of a pattern above its first glob character."""
    cut = min((pattern.index(c) for c in "*?[" if c in pattern), default=len(pattern))
    return pattern[: pattern.rfind("/", 0, cut) + 1].rstrip("/")


def glob_regex(pattern: str) -> re.Pattern:
    """A data_files pattern as the Hub reads it (fsspec): `*` within a name, `**` across folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] in "*?":
            out.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


# ---- splits by name --------------------------------------------------------------------------


def split_rules() -> list[Callable[[str], str | None]]:
    """The Hub's ways of naming a split, in the order it tries them: each gives a path's split or None."""

    def keyword_in(names_of: Callable[[list[str]], list[str]], tail: str) -> Callable[[str], str | None]:
        def split_of(path: str) -> str | None:
            for split, words in SPLIT_KEYWORDS.items():
                if any(re.fullmatch(rf"(.*{SEP})?{w}{tail}", n) for w in words for n in names_of(path.split("/"))):
                    return split
            return None

        return split_of

    def sharded(path: str) -> str | None:
        match = SHARDED.fullmatch(path)
        return match.group(1) if match else None

    return [sharded, keyword_in(lambda parts: parts[:-1], f"({SEP}.*)?"), keyword_in(lambda parts: parts[-1:], f"{SEP}.*")]


def split_files(files: list[tuple[str, int]], hub: HubDataset, where: str) -> list[tuple[str, int]]:
    """The files of the split, by the first naming rule any file follows; every file where none does."""
    base = hub.data_dir.strip("/")
    relative = {path: path[len(base) + 1 :] if base else path for path, _ in files}
    for rule in split_rules():
        splits = {path: rule(rel) for path, rel in relative.items()}
        if any(splits.values()):
            return [f for f in files if splits[f[0]] and (not hub.split or splits[f[0]] == hub.split)]
    if hub.split not in ("", DEFAULT_SPLIT):
        raise ConfigError(
            f"{where}.hub.split: no file name under {hub.data_dir or 'the repository'!r} carries a split, "
            f'so every file is the {DEFAULT_SPLIT!r} split; set split: {DEFAULT_SPLIT} or ""'
        )
    return files


def use_hub_tokens(hubs) -> None:
    """Read each Hub dataset's `token_secret` and read the dataset with it in this process (without one:
    huggingface_hub's own HF_TOKEN or login). Called where a process starts on the datasets: the
    launcher's listing, and each worker's `setup`."""
    for hub in hubs:
        if hub is not None:
            token = read_secret(hub.token_secret, hub.secret_api_endpoint) if hub.token_secret else None
            hub_filesystem.use_token(hub.repo_id, token)
