"""Benchmark: near-dedup quality against brute force, speed and memory against datatrove, and scaling.

The corpus is real code: .py files of the installed site-packages (1-30 KB, exact
copies dropped, ordered by a hash of their path), plus planted near-copies of some of
them, made with a seeded random edit at a known rate: lines replaced by lines of other
files, lines moved, or identifiers renamed (every occurrence), at rates from 2 % to
40 %; some copies are edited again, which makes chains.

1. Quality: our stage (`transforms.near_dedup.NearDedup`, the `dedup.near` defaults)
   runs on the corpus. The true pairs are those whose shingle sets (the same
   shingles) have an exact Jaccard at or above the threshold, computed for every pair
   of files by a sparse product of the file x shingle matrix. Prints the precision of
   the pairs the stage judged near-duplicates (the checked LSH candidates that link
   its clusters), the recall of true pairs (both files in one cluster), and, for
   scale, the precision of every two files of one cluster, which connected
   components lower by design.
2. Speed and memory: ours (Beam, in_memory) and datatrove's MinhashDedupSignature →
   Buckets → Cluster → Filter (LocalPipelineExecutor, one worker), each in its own
   process, read the same JSON-lines corpus and write the kept files. datatrove gets
   the same shingles (a WordTokenizer giving exact dedup's alphanumeric tokens, text
   normalisation off), the same bands x rows and 64-bit hashes; its process does not
   load Beam (asserted). Prints files/s, MB/s, peak memory (PSS) of the process tree,
   ours / datatrove, and each side's PSS once its libraries are loaded, before any work.
3. Scale: ours on 1x, 4x and 16x `--scale-mb` of distinct real files; prints MB/s
   at each size and its ratio to 1x.

    .venv/bin/pip install -e '.[bench]'    # datatrove, scipy
    .venv/bin/python bench/bench_near_dedup.py --files 3000 --scale-mb 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sys
import sysconfig
import tempfile

from bench_peer import measure, warm_cache
from process_tree import MEMORY, print_side_by_side, tree_usage

CORPUS = "corpus.jsonl"
RATES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
EDITS = ("replace-lines", "move-lines", "rename-identifiers")
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z_0-9]{2,}\b")


# ---- the corpus ------------------------------------------------------------------------


def real_files(root: str, max_files: int = 10**9, max_bytes: int = 10**12) -> list[str]:
    """Texts of distinct .py files of 1-30 KB under root, in order of a hash of their path."""
    from transforms.dedup_keys import dedup_key

    paths = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        paths += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".py")]
    paths.sort(key=lambda p: hashlib.sha256(os.path.relpath(p, root).encode()).digest())
    texts, keys, total = [], set(), 0
    for path in paths:
        if os.path.islink(path) or not 1000 <= os.path.getsize(path) <= 30000:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        key = dedup_key("a.py", text)
        if key in keys:
            continue
        keys.add(key)
        texts.append(text)
        total += len(text.encode())
        if len(texts) >= max_files or total >= max_bytes:
            break
    return texts


def edit(text: str, kind: str, rate: float, rng: random.Random, donor: str) -> str:
    lines = text.splitlines()
    n = max(1, round(rate * len(lines)))
    if kind == "replace-lines":
        donor_lines = donor.splitlines() or [""]
        for i in rng.sample(range(len(lines)), min(n, len(lines))):
            lines[i] = rng.choice(donor_lines)
    elif kind == "move-lines":
        for _ in range(n):
            line = lines.pop(rng.randrange(len(lines)))
            lines.insert(rng.randrange(len(lines) + 1), line)
    else:
        names = sorted(set(IDENTIFIER.findall(text)))
        for name in rng.sample(names, min(len(names), max(1, round(rate * len(names))))):
            text = re.sub(rf"\b{name}\b", f"{name}_v2", text)
        return text
    return "\n".join(lines) + "\n"


def planted_corpus(root: str, files: int, seed: int = 0) -> list[dict]:
    """About `files` records: real files, a fifth of them with a planted near-copy, some of those copied again."""
    rng = random.Random(seed)
    base = real_files(root, max_files=int(files / 1.25))
    texts = list(base)
    for i in rng.sample(range(len(base)), len(base) // 5):
        copy = edit(base[i], rng.choice(EDITS), rng.choice(RATES), rng, rng.choice(base))
        texts.append(copy)
        if rng.random() < 0.25:
            texts.append(edit(copy, rng.choice(EDITS), rng.choice(RATES), rng, rng.choice(base)))
    return [{"id": f"f{i:06d}", "text": t, "stars": rng.randrange(1000)} for i, t in enumerate(texts)]


def scale_corpus(root: str, mb: float) -> list[dict]:
    return [{"id": f"f{i:06d}", "text": t, "stars": i % 997} for i, t in enumerate(real_files(root, max_bytes=int(mb * 1e6)))]


def own_memory_mb() -> float:
    """This process's memory (PSS) now: a side's libraries, once loaded and before any work."""
    return tree_usage(os.getpid())[os.getpid()][0] / 2**20


def write_corpus(records: list[dict], folder: str) -> float:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, CORPUS), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return sum(len(r["text"].encode()) for r in records) / 1e6


# ---- our side --------------------------------------------------------------------------


def run_ours(folder: str, out: str, beam_args: list[str]) -> dict:
    import apache_beam as beam
    import pyarrow as pa

    from infra.writers import WriteParquetShards, WriteSmallJson, read_json
    from pipeline.corpus import CorpusFlow
    from pipeline.options import make_pipeline_options
    from schemas.config import NearDedupConfig, PipelineConfig
    from schemas.records import RepoFile
    from transforms.near_dedup import NearDedup

    def repo_file(line: str) -> RepoFile:
        r = json.loads(line)
        return RepoFile(r["id"], "local", "bench/" + r["id"], r["id"] + ".py", None, "MIT", r["stars"], len(r["text"]), r["text"])

    loaded = own_memory_mb()
    with beam.Pipeline(options=make_pipeline_options(beam_args)) as p:
        flow = CorpusFlow(p, PipelineConfig("bench"), out)
        files = p | beam.io.ReadFromText(os.path.join(folder, CORPUS)) | "ToRepoFile" >> beam.Map(repo_file)
        stage = NearDedup(flow, NearDedupConfig(enabled=True))
        result = files | stage
        stage.edges | beam.Map(lambda e: [e[0][1], e[1][1]]) | "WriteEdges" >> WriteSmallJson(os.path.join(out, "edges.json"))
        kept_schema = pa.schema([("id", pa.string()), ("content", pa.large_string())])
        result.kept | "WriteKept" >> WriteParquetShards(out, "kept", kept_schema, 4)
        (
            result.rejected
            | beam.Map(lambda r: [r.id, r.detail])
            | "WriteRejected" >> WriteSmallJson(os.path.join(out, "rejected.json"))
        )
    return {"loaded_mb": loaded, **{name: read_json(os.path.join(out, f"{name}.json")) for name in ("rejected", "edges")}}


# ---- datatrove's side ------------------------------------------------------------------


def run_datatrove(folder: str, out: str) -> dict:
    import xxhash
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    from schemas.config import NearDedupConfig
    from transforms.tokens import alnum_tokens

    # Beam is ours alone: loaded here, its libraries (over 100 MB) would count against datatrove.
    assert "apache_beam" not in sys.modules, "datatrove's side must not import Beam"
    loaded = own_memory_mb()

    class Signature(MinhashDedupSignature):
        """datatrove 0.10.0 hands xxhash a str, which xxhash 4 refuses: the same hash of its UTF-8 bytes."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._hash_func = lambda shingle: xxhash.xxh64_intdigest(shingle.encode("utf-8"))

    class AlnumTokenizer(WordTokenizer):
        """Exact dedup's alphanumeric tokens, so both sides shingle alike."""

        def word_tokenize(self, text):
            return alnum_tokens(text).decode("utf-8").split()

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    ours = NearDedupConfig()
    config = MinhashConfig(
        n_grams=ours.shingle_tokens,
        num_buckets=ours.bands,
        hashes_per_bucket=ours.rows,
        norm_config=TextNormConfig(False, False, False, False, False, False, False),
        hash_config=HashConfig(precision=64, hash_fc="xxhash"),
    )
    parts = {name: os.path.join(out, name) for name in ("signatures", "buckets", "remove", "kept", "removed", "logs")}

    def reader():
        return JsonlReader(folder, glob_pattern=CORPUS, text_key="text", id_key="id")

    steps = [
        ([reader(), Signature(parts["signatures"], config=config, language=AlnumTokenizer())], 1),
        ([MinhashDedupBuckets(parts["signatures"], parts["buckets"], config=config)], config.num_buckets),
        ([MinhashDedupCluster(parts["buckets"], parts["remove"], config=config)], 1),
        (
            [
                reader(),
                MinhashDedupFilter(parts["remove"], exclusion_writer=JsonlWriter(parts["removed"])),
                JsonlWriter(parts["kept"]),
            ],
            1,
        ),
    ]
    for i, (pipeline, tasks) in enumerate(steps):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=os.path.join(parts["logs"], str(i))).run()
    return {"loaded_mb": loaded}


# ---- quality ---------------------------------------------------------------------------


def true_pairs(records: list[dict], threshold: float) -> set[tuple[str, str]]:
    """Every pair of files whose shingle sets have Jaccard >= threshold: |A ∩ B| for all pairs at once from the
    sparse product of the file x shingle matrix with its transpose."""
    import numpy as np
    from scipy import sparse

    from schemas.config import NearDedupConfig
    from transforms.near_dedup_versions import hasher_of

    hasher = hasher_of(NearDedupConfig())
    sets = [hasher.shingles(r["text"]) for r in records]
    vocabulary, columns = np.unique(np.concatenate(sets), return_inverse=True)
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, columns)), shape=(len(sets), len(vocabulary)))
    common = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    sizes = np.array([len(s) for s in sets])
    jaccard = common.data / (sizes[common.row] + sizes[common.col] - common.data)
    keep = jaccard >= threshold
    ids = [r["id"] for r in records]
    return {(ids[i], ids[j]) for i, j in zip(common.row[keep], common.col[keep])}


def found_pairs(rejected: list[list[str]]) -> set[tuple[str, str]]:
    """Every two files of one cluster (a survivor and the files that name it)."""
    clusters: dict[str, list[str]] = {}
    for file_id, survivor in rejected:
        clusters.setdefault(survivor, [survivor]).append(file_id)
    pairs = set()
    for members in clusters.values():
        members.sort()
        pairs |= {(a, b) for i, a in enumerate(members) for b in members[i + 1 :]}
    return pairs


# ---- the runs --------------------------------------------------------------------------


def run_side(side: str, folder: str, work: str, beam_args: list[str]) -> dict:
    me = [sys.executable, os.path.abspath(__file__), "--side", side, "--corpus", folder, "--work", work]
    run = measure([*me, *beam_args], os.path.join(work, f"{side}.log"))
    return dict(run, **json.loads(run["stdout"].strip().splitlines()[-1]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3000, help="files in the quality and peer corpus (default 3000)")
    parser.add_argument("--scale-mb", type=float, default=8.0, help="size of the 1x scaling corpus (default 8 MB)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--side", choices=["ours", "datatrove"], help=argparse.SUPPRESS)  # a child's job
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args(argv)
    if args.side:
        out = os.path.join(args.work, f"out-{args.side}-{os.path.basename(args.corpus)}")
        shutil.rmtree(out, ignore_errors=True)
        run = run_ours(args.corpus, out, beam_args) if args.side == "ours" else run_datatrove(args.corpus, out)
        print(json.dumps(run))
        return

    from schemas.config import NearDedupConfig

    beam_args = beam_args or ["--direct_running_mode=in_memory"]
    threshold = NearDedupConfig().threshold
    work = tempfile.mkdtemp(prefix="bench-near-dedup-", dir=args.work)
    try:
        records = planted_corpus(args.root, args.files)
        folder = os.path.join(work, "planted")
        mb = write_corpus(records, folder)
        warm_cache(folder)
        print(f"corpus: {len(records)} files, {mb:.1f} MB (real .py files and planted near-copies); ours: {' '.join(beam_args)}")
        results = {side: run_side(side, folder, work, beam_args if side == "ours" else []) for side in ("ours", "datatrove")}

        truth = true_pairs(records, threshold)
        judged = {tuple(sorted(edge)) for edge in results["ours"]["edges"]}
        clustered = found_pairs(results["ours"]["rejected"])
        print(f"quality at Jaccard {threshold}, against {len(truth)} true pairs (exact Jaccard of every pair):")
        print(
            f"  pairs the stage judged near-duplicates: {len(judged)}, precision {len(judged & truth) / max(1, len(judged)):.3f}"
        )
        both = len(truth & clustered)
        print(f"  true pairs placed in one cluster: recall {both / max(1, len(truth)):.3f}")
        print(
            f"  every two files of one cluster: {len(clustered)} pairs, precision {both / max(1, len(clustered)):.3f} "
            "(clusters are connected components: A~B and B~C join A and C)"
        )

        print_side_by_side(results, len(records), mb)
        loaded = {side: round(r["loaded_mb"]) for side, r in results.items()}
        print(f"of which libraries loaded before any work ({MEMORY} of the side's process then), MB: {loaded}")

        print(
            f"{'scale':6} {'files':>7} {'MB':>7} {'seconds':>8} {'CPU s':>7} {'MB/s':>6} {'MB/CPU s':>9} "
            f"{f'peak {MEMORY} MB':>12}"
        )
        runs = []
        for factor in (1, 4, 16):
            scaled = scale_corpus(args.root, args.scale_mb * factor)
            folder = os.path.join(work, f"scale-{factor}x")
            scaled_mb = write_corpus(scaled, folder)
            warm_cache(folder)
            r = run_side("ours", folder, work, beam_args)
            runs.append((factor, scaled_mb, r))
            print(
                f"{factor:5}x {len(scaled):7d} {scaled_mb:7.1f} {r['seconds']:8.1f} {r['cpu_seconds']:7.1f} "
                f"{scaled_mb / r['seconds']:6.2f} {scaled_mb / r['cpu_seconds']:9.2f} {r['peak_mb']:12.0f}"
            )
        (_, mb1, r1), (_, mb4, r4), (_, mb16, r16) = runs
        print(
            f"MB/s at 16x / at 1x: wall {mb16 / r16['seconds'] / (mb1 / r1['seconds']):.2f}, "
            f"CPU {mb16 / r16['cpu_seconds'] / (mb1 / r1['cpu_seconds']):.2f}"
        )
        # The added MB over the added seconds: start-up (Python, Beam, the graph's fixed stages) cancels.
        low = (mb4 - mb1) / (r4["cpu_seconds"] - r1["cpu_seconds"])
        high = (mb16 - mb4) / (r16["cpu_seconds"] - r4["cpu_seconds"])
        print(f"marginal MB per CPU s: 1x-4x {low:.2f}, 4x-16x {high:.2f}, ratio {high / low:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
