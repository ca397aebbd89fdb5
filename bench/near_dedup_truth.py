"""The near-dedup benchmark's corpora, and the truth it judges them by, written apart from the stage.

The truth shares no code with `transforms/`: a file's tokens are the matches of the
regex `\\w+`, its shingles the tuples of 5 consecutive tokens, kept as a Python set, and
the Jaccard of two files is |A ∩ B| / |A ∪ B| of those sets, exactly. To find every
similar pair among thousands of files without comparing all of them as sets, a sparse
product of the file x shingle matrix counts the shared shingles of every pair that
shares one (the columns are Python's hash of each tuple); each pair it puts near the
floor is then measured again as sets.

Corpora:
- pairs spread evenly over J ∈ [0.5, 1.0]: each a real file (none within J 0.3 of
  another) and a copy edited until its
  truth Jaccard with the file is closest to a target drawn evenly within a J bin
  (lines replaced by new lines, lines inserted, lines deleted, or identifiers renamed);
- one cluster of near-copies: a generated file and copies, each replacing one line of
  the file, or of a random earlier copy (a random tree: most copies are then far from
  the first file and reach it only through others).
"""

from __future__ import annotations

import random
import re

SHINGLE_TOKENS = 5
WORD = re.compile(r"\w+")
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z_0-9]{2,}\b")
EDITS = ("replace-lines", "insert-lines", "delete-lines", "rename-identifiers")


def shingle_set(text: str) -> set[tuple[str, ...]]:
    tokens = WORD.findall(text)
    return {tuple(tokens[i : i + SHINGLE_TOKENS]) for i in range(len(tokens) - SHINGLE_TOKENS + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def similar_pairs(texts: list[str], floor: float) -> dict[tuple[int, int], float]:
    """(i, j) → truth Jaccard, i < j, for every two texts at or above `floor`."""
    import numpy as np
    from scipy import sparse

    sets = [shingle_set(t) for t in texts]
    hashed = [np.fromiter((hash(s) for s in shingles), dtype=np.int64, count=len(shingles)) for shingles in sets]
    vocabulary, columns = np.unique(np.concatenate(hashed), return_inverse=True)
    rows = np.repeat(np.arange(len(sets)), [len(h) for h in hashed])
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, columns)), shape=(len(sets), len(vocabulary)))
    common = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    sizes = np.array([len(s) for s in sets])
    estimate = common.data / (sizes[common.row] + sizes[common.col] - common.data)
    near = estimate >= floor - 0.01  # a hash collision could only move a pair by a shingle
    pairs = {}
    for i, j in zip(common.row[near].tolist(), common.col[near].tolist()):
        similarity = jaccard(sets[i], sets[j])
        if similarity >= floor:
            pairs[(i, j)] = similarity
    return pairs


def unrelated(texts: list[str], floor: float) -> list[str]:
    """The texts in order, less each one at truth Jaccard `floor` or more with one kept before it (site-packages
    holds near-copies of its own: vendored modules, versions side by side), so a pair corpus built on them
    holds only the pairs it plants."""
    dropped = set()
    for i, j in sorted(similar_pairs(texts, floor)):
        if i not in dropped:
            dropped.add(j)
    return [text for i, text in enumerate(texts) if i not in dropped]


def new_line(rng: random.Random) -> str:
    """A line of code whose five tokens no other file has."""
    a, b, c, d, e = (rng.randrange(10**9) for _ in range(5))
    return f"value_{a} = compute_{b}(arg_{c}, size_{d}) + offset_{e}"


def edited(text: str, kind: str, amount: int, seed: int) -> str:
    """`text` with `amount` edits of one kind; the same seed gives the same first edits at any amount."""
    rng = random.Random(seed)
    if kind == "rename-identifiers":
        names = sorted(set(IDENTIFIER.findall(text)))
        rng.shuffle(names)
        for name in names[:amount]:
            text = re.sub(rf"\b{name}\b", f"{name}_v2", text)
        return text
    lines = text.splitlines()
    order = list(range(len(lines)))
    rng.shuffle(order)
    chosen = set(order[:amount])
    out = []
    for i, line in enumerate(lines):
        if kind == "replace-lines" and i in chosen:
            out.append(new_line(rng))
        elif kind == "insert-lines" and i in chosen:
            out += [new_line(rng), line]
        elif not (kind == "delete-lines" and i in chosen):
            out.append(line)
    return "\n".join(out) + "\n"


def copy_near(text: str, target: float, kind: str, seed: int) -> str:
    """The edit of `text` (at least one) whose truth Jaccard with it is closest to `target`."""
    base = shingle_set(text)
    most = len(set(IDENTIFIER.findall(text))) if kind == "rename-identifiers" else len(text.splitlines())
    similarity = {}

    def at(amount):
        if amount not in similarity:
            similarity[amount] = jaccard(base, shingle_set(edited(text, kind, amount, seed)))
        return similarity[amount]

    low, high = 1, max(1, most)
    while low < high:  # the least amount at or below the target (Jaccard falls as edits grow)
        middle = (low + high) // 2
        if at(middle) > target:
            low = middle + 1
        else:
            high = middle
    best = min({low, max(1, low - 1)}, key=lambda amount: abs(at(amount) - target))
    return edited(text, kind, best, seed)


def pair_corpus(bases: list[str], bins: int, pairs_per_bin: int, seed: int = 0) -> list[dict]:
    """Real files and their edited copies, `pairs_per_bin` pairs aimed at each of `bins` equal J bins of
    [0.5, 1.0]; every file is used once."""
    rng = random.Random(seed)
    records = []
    for b in range(bins):
        for _ in range(pairs_per_bin):
            text = bases[len(records) // 2]
            target = 0.5 + (b + rng.random()) * 0.5 / bins
            copy = copy_near(text, target, rng.choice(EDITS), rng.randrange(2**32))
            for body in (text, copy):
                records.append({"id": f"f{len(records):06d}", "text": body, "stars": rng.randrange(1000)})
    return records


def cluster_corpus(copies: int, tree: bool, lines: int = 30, seed: int = 0) -> tuple[list[dict], list[int]]:
    """One file and `copies - 1` near-copies, each one line away from the first file or (`tree`) from a
    random earlier copy; and the index of each copy's parent (-1 for the first)."""
    rng = random.Random(seed)
    texts = ["\n".join(new_line(rng) for _ in range(lines)) + "\n"]
    parents = [-1]
    for _ in range(1, copies):
        parent = rng.randrange(len(texts)) if tree else 0
        body = texts[parent].splitlines()
        body[rng.randrange(lines)] = new_line(rng)
        texts.append("\n".join(body) + "\n")
        parents.append(parent)
    records = [{"id": f"c{i:06d}", "text": t, "stars": rng.randrange(1000)} for i, t in enumerate(texts)]
    return records, parents
