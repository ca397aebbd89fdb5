"""The format stage for code files: Figure 6a markup, attribute rules, star buckets, the pipeline."""

from __future__ import annotations

import collections
import json
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.corpus import pinned_star_buckets
from schemas.config import ConfigError, load_config
from schemas.records import Document, RepoFile
from tests.conftest import DIRECT_MODES, EXAMPLES, SAMPLE_CONFIG, SAMPLE_REPOS, local_pipeline, run_cli
from transforms.base import ApplyStage
from transforms.formatting import markup
from transforms.formatting.buckets import boundaries_from_histogram, bucket_of
from transforms.formatting.code_files import FormatCodeFn, StarBuckets

BOUNDARIES = [1, 2, 3, 4, 5]  # stars=5 → dstars=4, as in Figure 6a

FIGURE_6A_BODY = "\n".join(
    [
        "from typing import Dict",
        "",
        "def count_words(filename: str) -> Dict[str, int]:",
        '    """Count the number of occurrences of each word in the file."""',
        "    with open(filename, 'r') as f:",
        "        word_counts = {}",
        "        for line in f:",
        "            for word in line.split():",
        "                if word in word_counts:",
        "                    word_counts[word] += 1",
        "                else:",
        "                    word_counts[word] = 1",
        "    return word_counts",
        "",
    ]
)
# Figure 6a as printed in the paper, its last line included.
FIGURE_6A = "<| file ext=.py source=github |>\n" + FIGURE_6A_BODY + "<|/ file filename=string_utils.py dstars=4>"
# The one deliberate difference: every closing tag ends with " |>" (see transforms/formatting/markup.py).
FIGURE_6A_AS_BUILT = FIGURE_6A[: -len(">")] + " |>"


def make_file(path="pkg/mod.py", content="x = 1\n", source="local", origin="github", stars=5, repo="o/r", rev="c0"):
    return RepoFile(
        id=RepoFile.make_id(source, repo, path, rev),
        source=source,
        repo=repo,
        path=path,
        revision=rev,
        license="MIT",
        stars=stars,
        size=len(content.encode()),
        content=content,
        lang="Python",
        origin=origin,
    )


def format_file(record, seed=0, boundaries=BOUNDARIES):
    fn = FormatCodeFn(seed)
    fn.setup()
    return fn(record, star_boundaries=boundaries)


def attributes(doc: Document) -> dict:
    _, start, end = markup.unwrap("file", doc.text)
    return dict(start + end)


def test_figure_6a_character_for_character():
    attrs_start = [("ext", ".py"), ("source", "github")]
    attrs_end = [("filename", "string_utils.py"), ("dstars", 4)]
    assert markup.wrap("file", FIGURE_6A_BODY, attrs_start, attrs_end) == FIGURE_6A_AS_BUILT
    assert FIGURE_6A_AS_BUILT.replace(" |>", ">") == FIGURE_6A.replace(" |>", ">")


def test_figure_6a_from_the_stage_itself():
    """Among run seeds, the one that places ext+source first gives the figure exactly."""
    record = make_file("string_utils.py", FIGURE_6A_BODY, source="github", origin=None, stars=5, repo="someone/utils")
    texts = [format_file(record, seed).text for seed in range(500)]
    assert FIGURE_6A_AS_BUILT in texts
    assert len(set(texts)) > 20  # the placement really varies with the seed


def test_source_is_where_the_repository_is_hosted():
    assert attributes(format_file(make_file(source="local", origin="gitlab")))["source"] == "gitlab"
    assert attributes(format_file(make_file(source="github", origin=None)))["source"] == "github"
    assert attributes(format_file(make_file(source="gitlab", origin=None)))["source"] == "gitlab"
    assert attributes(format_file(make_file(source="bigquery", origin=None)))["source"] == "github"
    local = format_file(make_file(source="local", origin=None))
    assert "source" not in attributes(local) and local.origin is None and local.source == "local"


def test_dstars_only_for_github_repositories_with_known_stars():
    github = format_file(make_file(origin="github", stars=3))
    assert attributes(github)["dstars"] == "2" and github.star_bucket == 2 and github.stars == 3
    for record in (make_file(origin="gitlab", stars=3), make_file(origin="github", stars=None)):
        doc = format_file(record)
        assert "dstars" not in attributes(doc) and doc.star_bucket is None
    assert format_file(make_file(origin="gitlab", stars=3)).stars == 3  # the raw count stays a column


@pytest.mark.parametrize(
    "path, ext",
    [("a/b/mod.py", ".py"), ("x.tar.gz", ".gz"), ("Makefile", None), ("conf/.bashrc", None), ("A.PY", ".PY")],
)
def test_filename_and_extension(path, ext):
    doc = format_file(make_file(path))
    attrs = attributes(doc)
    assert attrs["filename"] == os.path.basename(path)
    assert attrs.get("ext") == ext == doc.ext


def test_columns_keep_the_metadata():
    record = make_file("src/a.py", origin="github", stars=4)
    doc = format_file(record)
    assert (doc.id, doc.kind, doc.repo, doc.path, doc.lang, doc.license) == (
        record.id,
        "code",
        "o/r",
        "src/a.py",
        "Python",
        "MIT",
    )
    assert (doc.ext, doc.origin, doc.stars, doc.star_bucket) == (".py", "github", 4, 3)


def test_same_record_same_text_and_the_seed_matters():
    records = [make_file(f"m{i}.py") for i in range(50)]
    first = [format_file(r, seed=11).text for r in records]
    assert first == [format_file(r, seed=11).text for r in records]
    assert first != [format_file(r, seed=12).text for r in records]


names = st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=20).filter(lambda s: s not in (".", ".."))


@settings(max_examples=300, deadline=None)
@given(
    content=st.text(max_size=400),
    name=names,
    origin=st.sampled_from(["github", "gitlab", None]),
    stars=st.none() | st.integers(0, 10**6),
    seed=st.integers(0, 2**31),
)
def test_stripping_the_markup_gives_back_the_content(content, name, origin, stars, seed):
    record = make_file(f"dir/{name}", content, origin=origin, stars=stars)
    doc = format_file(record, seed)
    body, start, end = markup.unwrap("file", doc.text)
    assert body == (content if content.endswith("\n") else content + "\n")
    keys = [k for k, _ in start + end]
    expected = {"filename"} | ({"ext"} if doc.ext else set()) | ({"source"} if origin else set())
    expected |= {"dstars"} if origin == "github" and stars is not None else set()
    assert sorted(keys) == sorted(expected)  # each attribute exactly once
    assert dict(start + end)["filename"] == markup.attribute_value(name)


def test_each_attribute_starts_half_the_documents():
    n = 10_000
    fn = FormatCodeFn(seed=2022)
    fn.setup()
    at_start = {k: 0 for k in ("filename", "ext", "source", "dstars")}
    for i in range(n):
        doc = fn(make_file(f"pkg/file_{i}.py", stars=i % 7), star_boundaries=BOUNDARIES)
        _, start, _ = markup.unwrap("file", doc.text)
        for k, _ in start:
            at_start[k] += 1
    assert all(abs(c / n - 0.5) <= 0.02 for c in at_start.values()), at_start
    assert fn.stats["attributes_at_start"] == sum(at_start.values())
    assert fn.stats["attributes_at_start"] + fn.stats["attributes_at_end"] == 4 * n


@pytest.mark.slow
def test_star_buckets_side_input_reaches_the_stage():
    files = [make_file(f"f{i}.py", repo=f"o/r{i % 8}", stars=(i % 8) * 10) for i in range(40)]
    files.append(make_file("g.py", repo="o/gitlab", origin="gitlab", stars=10**6))  # does not count
    with local_pipeline() as p:
        records = p | beam.Create(files)
        entry = records | StarBuckets()
        boundaries = beam.pvalue.AsSingleton(entry | beam.Map(lambda e: e["boundaries"]))
        out = records | ApplyStage(FormatCodeFn(seed=1), star_boundaries=boundaries)
        # eight repositories with 0, 10, ..., 70 stars
        expected_entry = {"percentiles": [50.0, 75.0, 87.5, 93.75, 96.875], "boundaries": [30, 50, 60, 70, 70], "repositories": 8}
        assert_that(entry, equal_to([expected_entry]), label="Entry")
        buckets = out.kept | beam.Map(lambda d: (d.stars, d.star_bucket)) | beam.Distinct()
        expected_buckets = [(0, 0), (10, 0), (20, 0), (30, 0), (40, 1), (50, 1), (60, 2), (70, 3), (10**6, None)]
        assert_that(buckets, equal_to(expected_buckets), label="Buckets")


# ---- the bundled sample through the CLI ----

SAMPLE_NOTEBOOK_BODY = """<text>
Word counts

This notebook demonstrates using textkit to count words in a short text.
</text>
<cell>
%matplotlib inline
</cell>
<cell>
from textkit import word_counts

counts = word_counts('the cat and the hat')
counts
</cell>
<text>
See the docs for slugify and truncate.
</text>
<cell>
import matplotlib.pyplot as plt
plt.bar(list(counts), list(counts.values()))
</cell>
"""


def read_sample(version) -> tuple[dict, dict]:
    """The manifest of a built version and its code documents by (repo, path)."""
    manifest = json.loads((version / "manifest.json").read_text())
    documents = pq.read_table(version / "documents").to_pylist()
    return manifest, {(d["repo"], d["path"]): d for d in documents if d["kind"] in ("code", "notebook")}


@pytest.fixture(scope="module")
def sample_runs(sample_version):
    """The session's sample build per DirectRunner mode: (output root, manifest, code documents)."""
    versions = {mode: sample_version(mode)[0] for mode in sorted(DIRECT_MODES)}
    return {mode: (version.parent.parent, *read_sample(version)) for mode, version in versions.items()}


def test_sample_notebook_document(sample_runs):
    _, manifest, documents = sample_runs["in_memory"]
    doc = documents[("octo-org/textkit", "notebooks/word_counts.ipynb")]
    body, start, end = markup.unwrap("file", doc["text"])
    assert body == SAMPLE_NOTEBOOK_BODY
    bucket = bucket_of(120, manifest["star_buckets"]["boundaries"])  # textkit has 120 stars (repos.json)
    expected = {"filename": "word_counts.ipynb", "ext": ".ipynb:python", "source": "github", "dstars": str(bucket)}
    assert dict(start + end) == expected
    assert (doc["kind"], doc["ext"], doc["origin"], doc["star_bucket"]) == ("notebook", ".ipynb:python", "github", bucket)
    assert manifest["counts"]["format"]["stats"]["notebooks"] == 1


def test_sample_star_buckets_cover_the_github_repositories_in_the_output(sample_runs):
    _, manifest, documents = sample_runs["in_memory"]
    with open(os.path.join(EXAMPLES, "repos.json"), encoding="utf-8") as f:
        known = {meta["repo"]: meta for meta in json.load(f).values()}
    github = {d["repo"] for d in documents.values() if known[d["repo"]]["origin"] == "github"}
    stars = collections.Counter(known[repo]["stars"] for repo in github)
    assert manifest["star_buckets"] == {
        "percentiles": [50.0, 75.0, 87.5, 93.75, 96.875],
        "boundaries": boundaries_from_histogram(stars),
        "repositories": len(github),
    }
    assert len(github) >= 3 and len(set(manifest["star_buckets"]["boundaries"])) >= 2  # the sample spans buckets
    for doc in documents.values():
        host = known[doc["repo"]]["origin"]
        expected = bucket_of(doc["stars"], manifest["star_buckets"]["boundaries"]) if host == "github" else None
        assert (doc["origin"], doc["star_bucket"]) == (host, expected), doc["path"]


def test_sample_code_document(sample_runs):
    _, manifest, documents = sample_runs["in_memory"]
    doc = documents[("numerics/mathlib", "mathlib/vector.py")]
    with open(os.path.join(SAMPLE_REPOS, "mathlib", "mathlib", "vector.py"), encoding="utf-8") as f:
        content = f.read()
    body, start, end = markup.unwrap("file", doc["text"])
    assert body == content
    bucket = str(bucket_of(5400, manifest["star_buckets"]["boundaries"]))  # mathlib has 5400 stars
    assert dict(start + end) == {"filename": "vector.py", "ext": ".py", "source": "github", "dstars": bucket}
    assert doc["text"] == markup.wrap("file", content, start, end)
    _, start, end = markup.unwrap("file", documents[("acme/webapp", "src/app.js")]["text"])
    assert dict(start + end) == {"filename": "app.js", "ext": ".js", "source": "gitlab"}  # GitLab: no dstars


def test_sample_text_is_the_same_on_every_rerun_and_runner(sample_runs):
    texts = {mode: {k: d["text"] for k, d in docs.items()} for mode, (_, _, docs) in sample_runs.items()}
    assert texts["in_memory"] == texts["multi_processing"] and len(texts["in_memory"]) > 10


def pinned_config(tmp_path, code_only: bool = False, **format_section) -> str:
    """The sample config plus a `format` section, in a folder that links to the sample's inputs; with
    `code_only`, its repositories alone (no StackOverflow dump, no near-dedup)."""
    for name in os.listdir(EXAMPLES):
        if not (tmp_path / name).exists():
            (tmp_path / name).symlink_to(os.path.join(EXAMPLES, name))
    with open(SAMPLE_CONFIG, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if code_only:
        del config["sources"]["stackoverflow"], config["stackoverflow"], config["dedup"]["near"]
    path = tmp_path / "pinned.yaml"
    path.write_text(yaml.safe_dump(dict(config, format=format_section)))
    return str(path)


# What the sample's near-dedup rejects: a run of its repositories without near-dedup keeps it.
NEAR_DUPLICATE = ("shell-club/cli-tools", "tools/stats.py")


@pytest.mark.slow  # a run of the sample's repositories through the CLI
def test_pinned_boundaries_from_an_earlier_version(sample_runs, tmp_path):
    out, earlier_manifest, earlier = sample_runs["in_memory"]
    earlier_version = str(out / "sample" / "v0001")
    config = pinned_config(tmp_path, code_only=True, star_boundaries_from=earlier_version)
    run_cli("run", "--config", config, "--out", str(tmp_path / "out"), "--stages", "corpus")
    manifest, documents = read_sample(tmp_path / "out" / "sample" / "v0001")
    assert manifest["star_buckets"] == {
        "percentiles": [50.0, 75.0, 87.5, 93.75, 96.875],
        "boundaries": earlier_manifest["star_buckets"]["boundaries"],
        "pinned_from": earlier_version,
    }
    assert set(documents) == set(earlier) | {NEAR_DUPLICATE}
    assert {k: documents[k]["text"] for k in earlier} == {k: d["text"] for k, d in earlier.items()}


def test_pinned_boundaries_from_the_config(tmp_path):
    config = load_config(pinned_config(tmp_path, star_boundaries=[0, 1, 2, 3, 4]))
    assert pinned_star_buckets(config) == {
        "percentiles": [50.0, 75.0, 87.5, 93.75, 96.875],
        "boundaries": [0.0, 1.0, 2.0, 3.0, 4.0],
        "pinned_from": "format.star_boundaries",
    }
    assert pinned_star_buckets(load_config(pinned_config(tmp_path))) is None  # default: computed over the run


@pytest.mark.parametrize(
    "section, message",
    [
        ({"star_boundaries": [1, 2, 3]}, "format.star_boundaries must be a list of 5 numbers"),
        ({"star_boundaries": [5, 4, 3, 2, 1]}, "format.star_boundaries must be non-decreasing"),
        ({"star_boundaries": [1, 2, 3, 4, 5], "star_boundaries_from": "v"}, "not both"),
        ({"star_boundaries": "12345"}, "format.star_boundaries: expected a list"),
        ({"stars": 1}, "unknown key(s) ['stars']"),
        ({"star_boundaries_from": "no/such/version"}, "format.star_boundaries_from"),
        ({"star_boundaries_from": "repos"}, "format.star_boundaries_from"),  # a folder, but not a version
        ({"star_boundaries_from": "empty"}, "format.star_boundaries_from: star_buckets.boundaries in"),
    ],
)
def test_bad_pins_fail_naming_the_key(tmp_path, section, message):
    (tmp_path / "empty").mkdir()  # a version whose run had no GitHub repository with stars
    (tmp_path / "empty" / "manifest.json").write_text(json.dumps({"star_buckets": {"boundaries": []}}))
    with pytest.raises(ConfigError) as error:
        pinned_star_buckets(load_config(pinned_config(tmp_path, **section)))
    assert message in str(error.value)
