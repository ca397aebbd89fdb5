"""Benchmark: StackOverflow read + join + format on synthetic dumps of two sizes (the larger >= 1 GiB).

Writes Posts.xml and Comments.xml in the real dump format (the sample's row layout,
HTML bodies with code blocks and entities, 0-14 answers per question, some scored
below zero, 0-8 comments per post) into a temporary folder, then runs, in a fresh
process per size so that each peak RSS is its own:

    read    every byte range of both files through `read_range` (the pipeline's reader)
    join    `link_comments`, then `select_thread` per question (the pipeline's join logic)
    format  `format_thread` per kept question (the pipeline's formatter)

The joins go through a shuffle that spills records to disk partitions keyed by post or
question id, as Dataflow's shuffle does; the partitions grow in number, not in size, with
the dump, so peak RSS should not grow with it. (The DirectRunner keeps every PCollection
in memory: a pipeline run on it measures the runner's buffers, not this code. `--beam-mb`
adds such a run of the project's Beam graph on a small dump, for its throughput.)

    .venv/bin/python bench/bench_stackoverflow.py                       # 256 MiB and 1100 MiB
    .venv/bin/python bench/bench_stackoverflow.py --sizes-mb 64 256 --beam-mb 8
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

MIB = 2**20
PARTITION_BYTES = 16 * MIB  # dump bytes per shuffle partition
BOUNDARIES = [0, 1, 3, 7, 15]  # dscore boundaries: fixed, so the join needs no extra pass
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- the synthetic dump ----------------------------------------------------------------------

WORDS = "the a of to in is it that for this with on my how can not but value list function error file string".split()
CODE = [
    "def f(x):\n    return [y for y in x if y < 10]\n",
    "for (int i = 0; i < n; i++) {\n    sum += a[i];\n}\n",
    "SELECT name, COUNT(*) FROM users WHERE age > 30 GROUP BY name;\n",
    'const r = await fetch(url);\nif (r.status !== 200 && !r.ok) throw new Error("x");\n',
]


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("\n", "&#xA;")


def html_body(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        parts.append("<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))) + " &amp; more.</p>\n")
        if rng.random() < 0.6:
            code = rng.choice(CODE).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            parts.append(f"<pre><code>{code}</code></pre>\n")
    return escape("".join(parts))


def write_dump(folder: str, size_bytes: int, seed: int = 0) -> None:
    """Posts.xml + Comments.xml totalling about `size_bytes`, in the dump's row layout."""
    rng = random.Random(seed)
    bodies = [html_body(rng) for _ in range(200)]  # escaped once, reused
    os.makedirs(folder, exist_ok=True)
    with (
        open(os.path.join(folder, "Posts.xml"), "w", encoding="utf-8") as posts,
        open(os.path.join(folder, "Comments.xml"), "w", encoding="utf-8") as comments,
    ):
        posts.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        comments.write('<?xml version="1.0" encoding="utf-8"?>\n<comments>\n')
        post_id = comment_id = 0
        while posts.tell() + comments.tell() < size_bytes:
            post_id += 1
            question = post_id
            tags = "".join(f"&lt;{rng.choice(WORDS)}&gt;" for _ in range(rng.randint(1, 4)))
            answers = rng.choice((0, 1, 1, 2, 2, 3, 4, 6, 14))
            day = f"2015-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.000"
            posts.write(
                f'  <row Id="{post_id}" PostTypeId="1" CreationDate="{day}" Score="{int(rng.expovariate(0.3)) - 1}" '
                f'ViewCount="{rng.randint(1, 10**5)}" Body="{rng.choice(bodies)}" OwnerUserId="{rng.randint(1, 10**6)}" '
                f'LastActivityDate="{day}" Title="How do I {" ".join(rng.choice(WORDS) for _ in range(8))}?" '
                f'Tags="{tags}" AnswerCount="{answers}" CommentCount="0" ContentLicense="CC BY-SA 4.0" />\n'
            )
            thread = [post_id]
            for _ in range(answers):
                post_id += 1
                thread.append(post_id)
                posts.write(
                    f'  <row Id="{post_id}" PostTypeId="2" ParentId="{question}" CreationDate="{day}" '
                    f'Score="{int(rng.expovariate(0.25)) - 2}" Body="{rng.choice(bodies)}" OwnerUserId="{rng.randint(1, 10**6)}" '
                    f'LastActivityDate="{day}" CommentCount="0" ContentLicense="CC BY-SA 4.0" />\n'
                )
            for target in thread:
                for _ in range(rng.choice((0, 0, 1, 2, 3, 8))):
                    comment_id += 1
                    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
                    comments.write(
                        f'  <row Id="{comment_id}" PostId="{target}" Score="{rng.randint(0, 5)}" Text="{text} &lt;3" '
                        f'CreationDate="{day}" UserId="{rng.randint(1, 10**6)}" ContentLicense="CC BY-SA 4.0" />\n'
                    )
        posts.write("</posts>\n")
        comments.write("</comments>\n")


# ---- one measured run (in its own process) ----------------------------------------------------


class Spill:
    """Records appended to P partition files on disk, read back one partition at a time."""

    def __init__(self, folder: str, name: str, partitions: int):
        self.paths = [os.path.join(folder, f"{name}-{p:04d}.pkl") for p in range(partitions)]
        self.files = [open(path, "wb") for path in self.paths]

    def add(self, key: int, value) -> None:
        pickle.dump(value, self.files[key % len(self.files)], protocol=pickle.HIGHEST_PROTOCOL)

    def partitions(self):
        for f in self.files:
            f.close()
        for path in self.paths:
            with open(path, "rb") as f:
                items = []
                while True:
                    try:
                        items.append(pickle.load(f))
                    except EOFError:
                        break
            os.remove(path)
            yield items


def measure(dump: str) -> dict:
    from schemas.config import StackOverflowConfig
    from schemas.records import Rejected, StackComment, StackPost
    from transforms.sources.dump_files import find_dump_files, split_ranges
    from transforms.sources.stackoverflow import read_range
    from transforms.stackoverflow import link_comments, select_thread
    from transforms.stackoverflow_format import format_thread

    limits = StackOverflowConfig()
    files = find_dump_files(dump)
    dump_bytes = sum(f.size for f in files)
    partitions = max(4, dump_bytes // PARTITION_BYTES)
    spill_dir = tempfile.mkdtemp(dir=dump)
    post_question = Spill(spill_dir, "post-question", partitions)  # post id → question id
    post_comments = Spill(spill_dir, "post-comments", partitions)  # post id → comment
    thread_posts = Spill(spill_dir, "thread-posts", partitions)  # question id → post
    thread_comments = Spill(spill_dir, "thread-comments", partitions)  # question id → comment
    counts = collections.Counter()
    times = {}

    start, cpu_start = time.perf_counter(), time.process_time()
    for r in split_ranges(files, limits.range_bytes):
        for out in read_range(r, limits.max_row_bytes):
            if isinstance(out, StackPost):
                post_question.add(out.post_id, (out.post_id, out.question_id))
                thread_posts.add(out.question_id, out)
            elif isinstance(out, StackComment):
                post_comments.add(out.post_id, out)
            else:
                counts[f"read:{out.reason}"] += 1
            counts["rows"] += 1
    times["read"] = time.perf_counter() - start
    read_cpu = time.process_time() - cpu_start

    start = time.perf_counter()
    for pairs, comments in zip(post_question.partitions(), post_comments.partitions()):
        questions = collections.defaultdict(list)
        for post_id, question_id in pairs:
            questions[post_id].append(question_id)
        by_post = collections.defaultdict(list)
        for c in comments:
            by_post[c.post_id].append(c)
        for post_id, cs in by_post.items():
            for out in link_comments(questions.get(post_id, []), cs):
                if isinstance(out, Rejected):
                    counts[f"join:{out.reason}"] += 1
                else:
                    thread_comments.add(out[0], out)  # (question id, comment)
    times["link"] = time.perf_counter() - start

    start, format_seconds = time.perf_counter(), 0.0
    for posts, comments in zip(thread_posts.partitions(), thread_comments.partitions()):
        groups = collections.defaultdict(lambda: ([], []))
        for p in posts:
            groups[p.question_id][0].append(p)
        for question_id, c in comments:
            groups[question_id][1].append(c)
        for question_id in sorted(groups):
            group_posts, group_comments = groups[question_id]
            selection = select_thread(group_posts, group_comments, limits)
            for r in selection.rejected:
                counts[f"join:{r.reason}"] += 1
            if selection.thread is not None:
                t = time.perf_counter()
                doc = format_thread(selection.thread, BOUNDARIES, 0)
                format_seconds += time.perf_counter() - t
                counts["documents"] += 1
                counts["document_bytes"] += len(doc.text.encode("utf-8"))
    times["select+format"] = time.perf_counter() - start
    times["of which format"] = format_seconds
    shutil.rmtree(spill_dir)
    total = times["read"] + times["link"] + times["select+format"]
    return {
        "dump_mib": round(dump_bytes / MIB, 1),
        "partitions": partitions,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "mib_per_s": {
            "read": round(dump_bytes / MIB / times["read"], 1),
            "read per cpu": round(dump_bytes / MIB / read_cpu, 1),
            "read+join+format": round(dump_bytes / MIB / total, 1),
            # per CPU-second of this process: what the wall-clock rate would be on an idle core
            "read+join+format per cpu": round(dump_bytes / MIB / (time.process_time() - cpu_start), 1),
        },
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "counts": dict(sorted(counts.items())),
    }


def measure_beam(dump: str) -> dict:
    """The project's Beam graph (read → join → buckets → format) on the in-memory DirectRunner."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from schemas.config import StackOverflowConfig
    from transforms.sources.dump_files import find_dump_files, split_ranges
    from transforms.sources.stackoverflow import ReadStackExchangeDump
    from transforms.stackoverflow import JoinThreads
    from transforms.stackoverflow_format import ScoreBuckets, format_threads

    limits = StackOverflowConfig(range_bytes=4 * MIB)
    files = find_dump_files(dump)
    dump_bytes = sum(f.size for f in files)
    start = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as p:
        records = p | ReadStackExchangeDump(split_ranges(files, limits.range_bytes), limits.max_row_bytes)
        threads = records.kept | JoinThreads(limits)
        buckets = threads.kept | ScoreBuckets()
        threads.kept | format_threads(0, buckets.boundaries)
    seconds = time.perf_counter() - start
    return {
        "dump_mib": round(dump_bytes / MIB, 1),
        "seconds": round(seconds, 1),
        "mib_per_s": round(dump_bytes / MIB / seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_child(mode: str, dump: str) -> dict:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", mode, dump], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run on {dump} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs=2, default=[256, 1100], help="the two dump sizes, MiB")
    parser.add_argument("--beam-mb", type=int, default=0, help="also run the Beam graph on a dump this size (0: no)")
    parser.add_argument("--workdir", default=None, help="where to write the dumps (default: a temporary folder)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DUMP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, dump = args.child
        print(json.dumps(measure(dump) if mode == "loop" else measure_beam(dump)))
        return
    work = tempfile.mkdtemp(prefix="so-bench-", dir=args.workdir)
    try:
        results = []
        for size in args.sizes_mb:
            dump = os.path.join(work, f"dump-{size}")
            start = time.perf_counter()
            write_dump(dump, size * MIB)
            print(f"generated {size} MiB dump in {time.perf_counter() - start:.0f} s", flush=True)
            results.append(run_child("loop", dump))
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(dump)
        print("\nMiB/s: wall clock (per CPU-second of the process)")
        print(" dump MiB          read  read+join+format  peak RSS MiB  documents")
        for r in results:
            rates = r["mib_per_s"]
            read = f"{rates['read']} ({rates['read per cpu']})"
            total = f"{rates['read+join+format']} ({rates['read+join+format per cpu']})"
            print(f"{r['dump_mib']:9}  {read:>12}  {total:>16}  {r['peak_rss_mib']:12}  {r['counts']['documents']:9}")
        if args.beam_mb:
            dump = os.path.join(work, f"dump-beam-{args.beam_mb}")
            write_dump(dump, args.beam_mb * MIB)
            beam_result = run_child("beam", dump)
            print(f"\nBeam graph, DirectRunner in_memory: {json.dumps(beam_result)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
