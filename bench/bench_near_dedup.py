"""Benchmark: near-dedup quality against an independent truth, beside datatrove's; speed, scaling, big clusters.

1. Quality. A generated corpus of pairs spread evenly over Jaccard [0.5, 1.0]: real
   .py files of the installed site-packages (1-30 KB, none within J 0.3 of another), each with
   one copy edited until its truth Jaccard is closest to a target drawn evenly within
   one of ten J bins (bench/near_dedup_truth.py: the truth is exact Jaccard over sets
   of 5-token shingles of the regex's tokens, code of its own). Our stage
   (`transforms.dedup.near.NearDedup`, the `dedup.near` defaults) and datatrove's
   MinhashDedupSignature → Buckets → Cluster → Filter run on it, datatrove twice: with
   our banding (36 x 7) and with its default (14 x 8), the same shingles (a
   WordTokenizer giving exact dedup's alphanumeric tokens, text normalisation off) and
   64-bit hashes. Two files are flagged as duplicates when they end in one cluster
   (ours: a rejection's `survivor=`; datatrove: its cluster ids). Prints, per truth J
   bin, the pairs and the share each side flagged (recall in the bins at or above the
   0.7 threshold, the false-positive rate below it), then precision and recall over
   all pairs (truth: J >= 0.7).
2. Speed and memory: ours (Beam, in_memory) and datatrove (36 x 7, LocalPipelineExecutor,
   one worker), each in its own process, on the quality corpus; its process does not
   load Beam (asserted). Prints files/s, MB/s, peak memory (PSS) of the process tree.
3. Scale: ours on 1x, 4x, 16x and 64x `--scale-mb` of distinct real files; MB/s at each
   size and the marginal MB per CPU second between sizes.
4. Clusters: a chain of 30 near-copies (each next to the one before it only, the
   survivor at one end), `--cluster` near-copies of one file, and `--cluster` copies of
   copies (a random tree): files kept, whether the one kept is the most-starred,
   rejections naming a file that was itself rejected, the last round that changed a label
   (`label-rounds`), the pairs left to the union after the rounds (`unsettled-pairs`), time and memory.

    .venv/bin/pip install -e '.[bench]'    # datatrove, scipy
    .venv/bin/python bench/bench_near_dedup.py --pairs-per-bin 80 --scale-mb 1.8 --cluster 10000
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile

from bench_peer import measure, warm_cache
from near_dedup_truth import cluster_corpus, jaccard, new_line, pair_corpus, shingle_set, similar_pairs, unrelated
from process_tree import MEMORY, print_side_by_side, tree_usage

CORPUS = "corpus.jsonl"
BINS = 10  # equal J bins over [0.5, 1.0]
THRESHOLD = 0.7  # the truth's duplicates (the stage's default threshold)
UNRELATED = 0.3  # no two real files of the pair corpus are this similar: it holds only the pairs it plants
DATATROVE_BANDINGS = {"datatrove": (36, 7), "datatrove-default": (14, 8)}  # buckets x hashes per bucket


# ---- the corpus ------------------------------------------------------------------------


def real_files(root: str, max_files: int = 10**9, max_bytes: int = 10**12) -> list[str]:
    """Texts of distinct .py files of 1-30 KB under root, in order of a hash of their path."""
    from transforms.dedup.exact_keys import dedup_key

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


def chain_corpus(length: int = 30) -> list[dict]:
    """x0 ~ x1 ~ ...: each copy replaces the next 9 of 100 generated lines of the one before it (neighbours
    near J 0.8, files two apart below 0.7); stars fall along the chain, so its survivor is at one end."""
    import random

    rng = random.Random(1)
    lines = [new_line(rng) for _ in range(100)]
    texts = []
    for k in range(length):
        if k:
            start = (9 * k) % 91
            lines[start : start + 9] = [new_line(rng) for _ in range(9)]
        texts.append("\n".join(lines) + "\n")
    return [{"id": f"x{i:02d}", "text": t, "stars": 1000 - i} for i, t in enumerate(texts)]


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

    from infra.spill import SCRATCH_DIR
    from infra.writers import WriteParquetShards, WriteSmallJson, read_json
    from pipeline.options import make_pipeline_options
    from schemas.config import NearDedupConfig
    from schemas.records import RepoFile
    from transforms.dedup.near import NearDedup

    def repo_file(line: str) -> RepoFile:
        r = json.loads(line)
        return RepoFile(r["id"], "local", "bench/" + r["id"], r["id"] + ".py", None, "MIT", r["stars"], len(r["text"]), r["text"])

    loaded = own_memory_mb()
    with beam.Pipeline(options=make_pipeline_options(beam_args)) as p:
        files = p | beam.io.ReadFromText(os.path.join(folder, CORPUS)) | "ToRepoFile" >> beam.Map(repo_file)
        result = files | NearDedup(NearDedupConfig(enabled=True), os.path.join(out, SCRATCH_DIR), out)
        stats = result.tally | beam.Filter(lambda t: t[0][1] == "stat") | "SumStats" >> beam.CombinePerKey(sum)
        stats | beam.Map(lambda t: [t[0][2], t[1]]) | "WriteStats" >> WriteSmallJson(os.path.join(out, "stats.json"))
        kept_schema = pa.schema([("id", pa.string()), ("content", pa.large_string())])
        result.kept | "WriteKept" >> WriteParquetShards(out, "kept", kept_schema, 4)
        (
            result.rejected
            | "AllRejected" >> beam.Flatten()
            | beam.Map(lambda r: [r.id, r.detail])
            | "WriteRejected" >> WriteSmallJson(os.path.join(out, "rejected.json"))
        )
    return {
        "loaded_mb": loaded,
        "rejected": read_json(os.path.join(out, "rejected.json")),
        "stats": dict(read_json(os.path.join(out, "stats.json"))),
    }


# ---- datatrove's side ------------------------------------------------------------------


def run_datatrove(folder: str, out: str, buckets: int, hashes_per_bucket: int) -> dict:
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
    from transforms.dedup.tokens import alnum_tokens

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
        num_buckets=buckets,
        hashes_per_bucket=hashes_per_bucket,
        norm_config=TextNormConfig(False, False, False, False, False, False, False),
        hash_config=HashConfig(precision=64, hash_fc="xxhash"),
    )
    parts = {name: os.path.join(out, name) for name in ("signatures", "buckets", "remove", "kept", "removed", "logs")}

    def reader():
        return JsonlReader(folder, glob_pattern=CORPUS, text_key="text", id_key="id")

    steps = [
        ([reader(), Signature(parts["signatures"], config=config, language=AlnumTokenizer())], 1),
        ([MinhashDedupBuckets(parts["signatures"], parts["buckets"], config=config)], config.num_buckets),
        ([MinhashDedupCluster(parts["buckets"], parts["remove"], config=config, save_cluster_id=True)], 1),
        (
            [
                reader(),
                MinhashDedupFilter(parts["remove"], exclusion_writer=JsonlWriter(parts["removed"]), load_cluster_ids=True),
                JsonlWriter(parts["kept"]),
            ],
            1,
        ),
    ]
    for i, (pipeline, tasks) in enumerate(steps):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=os.path.join(parts["logs"], str(i))).run()
    return {"loaded_mb": loaded}


# ---- quality ---------------------------------------------------------------------------


def clusters_of_ours(rejected: list[list[str]]) -> dict[str, str]:
    """Rejected id → its survivor's id, from the detail `survivor=<id> jaccard=<J>`."""
    return {file_id: dict(field.split("=", 1) for field in detail.split())["survivor"] for file_id, detail in rejected}


def clusters_of_datatrove(out: str) -> dict[str, int]:
    """Document id → datatrove's cluster id, for every document it put in a cluster."""
    clusters = {}
    for path in glob.glob(os.path.join(out, "kept", "*")) + glob.glob(os.path.join(out, "removed", "*")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                if doc["metadata"].get("minhash_cluster_id", -1) != -1:
                    clusters[doc["id"]] = doc["metadata"]["minhash_cluster_id"]
    return clusters


def flagged_pairs(cluster_of: dict) -> set[tuple[str, str]]:
    """Every two files of one cluster (files in no cluster: none)."""
    members: dict = {}
    for file_id, cluster in cluster_of.items():
        members.setdefault(cluster, set()).add(file_id)
    for cluster, ids in members.items():
        if isinstance(cluster, str):
            ids.add(cluster)  # ours: the survivor, which names no one
    return {(a, b) for ids in members.values() for a in ids for b in ids if a < b}


def j_bin(similarity: float) -> int:
    return min(BINS - 1, int(similarity * 2 * BINS + 1e-9) - BINS)


def print_quality(records: list[dict], flagged: dict[str, set]) -> None:
    """Per truth J bin, the share of pairs each side flagged; then precision and recall over all pairs."""
    ids = [r["id"] for r in records]
    truth = {(ids[i], ids[j]): similarity for (i, j), similarity in similar_pairs([r["text"] for r in records], 0.5).items()}
    sides = list(flagged)
    positives = {pair for pair, similarity in truth.items() if similarity >= THRESHOLD}
    print(f"quality against the truth: {len(truth)} pairs at J >= 0.5, {len(positives)} at >= {THRESHOLD}")
    print(f"{'truth J':12} {'pairs':>6} " + " ".join(f"{side:>17}" for side in sides) + "   (share flagged)")
    for b in range(BINS):
        pairs = [pair for pair, similarity in truth.items() if j_bin(similarity) == b]
        low, high = 0.5 + b * 0.5 / BINS, 0.5 + (b + 1) * 0.5 / BINS
        shares = " ".join(f"{sum(p in flagged[side] for p in pairs) / max(1, len(pairs)):17.3f}" for side in sides)
        meaning = "recall" if low >= THRESHOLD else "false positives"
        print(f"[{low:.2f}, {high:.2f}{']' if b == BINS - 1 else ')'} {len(pairs):6d} {shares}   {meaning}")
    for side in sides:
        found = flagged[side]
        below = sum(pair not in truth for pair in found)
        hits = len(found & positives)
        print(
            f"{side:17}: flagged {len(found)} pairs ({below} below J 0.5), precision {hits / max(1, len(found)):.3f}, "
            f"recall {hits / max(1, len(positives)):.3f}"
        )


# ---- the runs --------------------------------------------------------------------------


def run_side(side: str, folder: str, work: str, beam_args: list[str]) -> dict:
    me = [sys.executable, os.path.abspath(__file__), "--side", side, "--corpus", folder, "--work", work]
    run = measure([*me, *beam_args], os.path.join(work, f"{side}.log"))
    return dict(run, **json.loads(run["stdout"].strip().splitlines()[-1]))


def side_out(work: str, side: str, corpus: str) -> str:
    return os.path.join(work, f"out-{side}-{os.path.basename(corpus)}")


def quality_and_peer(args, work: str, beam_args: list[str]) -> None:
    wanted = BINS * args.pairs_per_bin
    bases = unrelated(real_files(args.root, max_files=wanted * 5 // 4), UNRELATED)[:wanted]
    records = pair_corpus(bases, BINS, args.pairs_per_bin)
    folder = os.path.join(work, "pairs")
    mb = write_corpus(records, folder)
    warm_cache(folder)
    print(f"pair corpus: {len(records)} files, {mb:.1f} MB ({args.pairs_per_bin} pairs aimed at each of {BINS} J bins)")
    results = {side: run_side(side, folder, work, beam_args if side == "ours" else []) for side in ("ours", *DATATROVE_BANDINGS)}
    flagged = {"ours (36x7, check)": flagged_pairs(clusters_of_ours(results["ours"]["rejected"]))}
    for side, (buckets, rows) in DATATROVE_BANDINGS.items():
        flagged[f"datatrove ({buckets}x{rows})"] = flagged_pairs(clusters_of_datatrove(side_out(work, side, folder)))
    print_quality(records, flagged)
    peers = {"ours": results["ours"], "datatrove": results["datatrove"]}
    print_side_by_side(peers, len(records), mb)
    loaded = {side: round(r["loaded_mb"]) for side, r in peers.items()}
    print(f"of which libraries loaded before any work ({MEMORY} of the side's process then), MB: {loaded}")


def scaling(args, work: str, beam_args: list[str]) -> None:
    print(f"{'scale':6} {'files':>7} {'MB':>7} {'seconds':>8} {'CPU s':>7} {'MB/s':>6} {'MB/CPU s':>9} {f'peak {MEMORY} MB':>12}")
    runs = []
    for factor in (1, 4, 16, 64):
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
        shutil.rmtree(folder)
    (_, mb1, r1), last = runs[0], runs[-1]
    print(f"MB/s at 64x / at 1x: wall {last[1] / last[2]['seconds'] / (mb1 / r1['seconds']):.2f}")
    # The added MB over the added CPU seconds: start-up (Python, Beam, the graph's fixed stages) cancels.
    for (f0, mb0, r0), (f1, mb1_, r1_) in zip(runs, runs[1:]):
        print(f"marginal MB per CPU s {f0}x-{f1}x: {(mb1_ - mb0) / (r1_['cpu_seconds'] - r0['cpu_seconds']):.2f}")


def cluster_row(name: str, records: list[dict], work: str, beam_args: list[str]) -> None:
    """Ours on one cluster: files kept, rejections naming a rejected file, rounds, time and memory."""
    folder = os.path.join(work, name)
    mb = write_corpus(records, folder)
    r = run_side("ours", folder, work, beam_args)
    survivor_of = clusters_of_ours(r["rejected"])
    kept = sorted({rec["id"] for rec in records} - set(survivor_of))
    expected = min(records, key=lambda rec: (-rec["stars"], rec["id"]))["id"]
    print(
        f"{name:10} {len(records):7d} {mb:6.1f} {len(kept):5d} {str(kept == [expected]):>9} "
        f"{sum(s in survivor_of for s in survivor_of.values()):9d} {r['stats'].get('label-rounds'):7d} "
        f"{r['stats'].get('unsettled-pairs'):9d} {r['seconds']:8.1f} {r['cpu_seconds']:7.1f} {r['peak_mb']:10.0f}"
    )


def clusters(args, work: str, beam_args: list[str]) -> None:
    chain = chain_corpus(30)
    sets = [shingle_set(r["text"]) for r in chain]
    linked = sum(jaccard(a, b) >= THRESHOLD for a, b in zip(sets, sets[1:]))
    skips = sum(jaccard(a, b) >= THRESHOLD for a, b in zip(sets, sets[2:]))
    print(f"chain: {linked} of 29 neighbours at truth J >= {THRESHOLD}, {skips} of 28 files two apart")
    corpora = {}
    for shape, tree in (("copies", False), ("tree", True)):
        records, parents = cluster_corpus(args.cluster, tree)
        sets = [shingle_set(r["text"]) for r in records]
        linked = sum(jaccard(sets[i], sets[p]) >= THRESHOLD for i, p in enumerate(parents) if p >= 0)
        far = sum(jaccard(sets[0], s) < THRESHOLD for s in sets)
        print(
            f"{shape}: {linked} of {len(records) - 1} at truth J >= {THRESHOLD} with their parent, {far} below it with the first"
        )
        corpora[f"{shape}-{args.cluster}"] = records
    print(
        f"{'cluster':10} {'files':>7} {'MB':>6} {'kept':>5} {'survivor':>9} {'bad names':>9} {'rounds':>7} "
        f"{'unsettled':>9} {'seconds':>8} {'CPU s':>7} {f'peak {MEMORY}':>10}"
    )
    cluster_row("chain-30", chain, work, beam_args)
    for name, records in corpora.items():
        cluster_row(name, records, work, beam_args)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs-per-bin", type=int, default=80, help="pairs aimed at each J bin (default 80)")
    parser.add_argument("--scale-mb", type=float, default=1.8, help="size of the 1x scaling corpus (default 1.8 MB)")
    parser.add_argument("--cluster", type=int, default=10000, help="files of the one big cluster (default 10000)")
    parser.add_argument("--parts", default="quality,scale,clusters", help="which parts to run (default all)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--side", choices=["ours", *DATATROVE_BANDINGS], help=argparse.SUPPRESS)  # a child's job
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args(argv)
    if args.side:
        out = side_out(args.work, args.side, args.corpus)
        shutil.rmtree(out, ignore_errors=True)
        if args.side == "ours":
            run = run_ours(args.corpus, out, beam_args)
        else:
            run = run_datatrove(args.corpus, out, *DATATROVE_BANDINGS[args.side])
        print(json.dumps(run))
        return

    beam_args = beam_args or ["--direct_running_mode=in_memory"]
    work = tempfile.mkdtemp(prefix="bench-near-dedup-", dir=args.work)
    print(f"ours: {' '.join(beam_args)}")
    try:
        parts = {"quality": quality_and_peer, "scale": scaling, "clusters": clusters}
        for name in args.parts.split(","):
            parts[name](args, work, beam_args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
