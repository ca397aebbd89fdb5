"""Benchmark: the StackOverflow part of the corpus graph (read + join + format) on synthetic dumps of two sizes.

Writes Posts.xml and Comments.xml in the real dump format (the sample's row layout,
HTML bodies with code blocks and entities, 0-14 answers per question, some scored
below zero, 0-8 comments per post) into a temporary folder, then runs, in a fresh
process per size, the project's Beam graph as `pipeline/corpus.py` wires it
(`stackoverflow_documents`: ReadStackExchangeDump → JoinThreads → ScoreBuckets →
format) on the local runner, with the stages' tallies summed as a run sums them and the
documents and rejects consumed per PCollection, as the writers take them.
Peak memory (PSS) and CPU seconds are sampled over each run's whole process tree
(`bench/process_tree.py`), so worker processes count too.

The join is two external sorts whose shuffles carry run paths, and the threads wait
for the dscore buckets in spill files, so peak memory should not grow with the dump: the
last line prints the ratio of the two peaks (goal: within 0.8-1.2).

    .venv/bin/python bench/bench_stackoverflow.py                            # 256 and 1024 MiB
    .venv/bin/python bench/bench_stackoverflow.py --sizes-mb 8 32            # a quick check
    .venv/bin/python bench/bench_stackoverflow.py --direct_running_mode=multi_processing --direct_num_workers=2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile

from process_tree import MEMORY, measure

MIB = 2**20
MEMORY_GOAL = (0.8, 1.2)  # peak memory at the larger size over the smaller one

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


def run_graph(dump: str, beam_args: list[str]) -> dict:
    """The corpus graph's StackOverflow part on one dump; its summed tallies."""
    import apache_beam as beam

    from infra import storage
    from infra.accounting import fold_tallies
    from infra.writers import WriteSmallJson, read_json
    from pipeline.corpus import CorpusFlow, stackoverflow_documents
    from pipeline.options import make_pipeline_options
    from schemas.config import PipelineConfig
    from schemas.sources_config import SourcesConfig

    config = PipelineConfig(name="bench", sources=SourcesConfig(stackoverflow=(dump,)))
    out_dir = tempfile.mkdtemp(prefix="out-", dir=os.path.dirname(dump))
    counts_file = os.path.join(out_dir, "counts.json")
    with beam.Pipeline(options=make_pipeline_options(beam_args)) as p:
        flow = CorpusFlow(p, config, out_dir)
        stackoverflow_documents(flow)
        for i, pcoll in enumerate(flow.documents + flow.rejected):  # consumed one by one, as the writers take them
            pcoll | f"Consume{i}" >> beam.Map(lambda _: None)
        (
            flow.tallies
            | "AllTallies" >> beam.Flatten()
            | "SumTallies" >> beam.CombinePerKey(sum)
            | "WriteCounts" >> WriteSmallJson(counts_file)
        )
    counts = fold_tallies(read_json(counts_file))
    storage.delete_tree(out_dir)
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs=2, default=[256, 1024], help="the two dump sizes, MiB")
    parser.add_argument("--workdir", default=None, help="where to write the dumps (default: a temporary folder)")
    parser.add_argument("--child", metavar="DUMP", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args(argv)
    beam_args = beam_args or ["--direct_running_mode=in_memory"]
    if args.child:
        print(json.dumps(run_graph(args.child, beam_args)))
        return
    work = tempfile.mkdtemp(prefix="so-bench-", dir=args.workdir)
    print(f"local runner, {' '.join(beam_args)}")
    print(f"{'dump MiB':>9} {'rows':>9} {'seconds':>8} {'CPU s':>7} {'MiB/s':>6} {f'peak {MEMORY} MiB':>13} {'documents':>10}")
    try:
        results = []
        for size in args.sizes_mb:
            dump = os.path.join(work, f"site{size}")
            write_dump(dump, size * MIB)
            mib = sum(os.path.getsize(os.path.join(dump, t)) for t in ("Posts.xml", "Comments.xml")) / MIB
            r = measure([sys.executable, os.path.abspath(__file__), "--child", dump, *beam_args], os.path.join(work, "log"))
            counts = json.loads(r["stdout"].strip().splitlines()[-1])
            shutil.rmtree(dump)
            results.append(r)
            rows, documents = counts["stackoverflow-read"]["in"], counts["stackoverflow-format"]["kept"]
            print(
                f"{mib:9.1f} {rows:9d} {r['seconds']:8.1f} {r['cpu_seconds']:7.1f} {mib / r['seconds']:6.2f} "
                f"{r['peak_mb']:13.0f} {documents:10d}",
                flush=True,
            )
        ratio = results[1]["peak_mb"] / results[0]["peak_mb"]
        low, high = MEMORY_GOAL
        print(f"peak {MEMORY} {args.sizes_mb[1]} MiB / {args.sizes_mb[0]} MiB: {ratio:.2f} (goal {low}-{high})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
