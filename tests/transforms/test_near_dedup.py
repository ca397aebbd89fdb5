"""Near-dedup: MinHash over exact dedup's tokens, LSH candidates, clusters by label propagation in Beam."""

from __future__ import annotations

import os
import random
import re

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.pipeline import PipelineVisitor

from infra.spill import SCRATCH_DIR
from infra.writers import WriteSmallJson, read_json, write_json
from schemas import stage_names
from schemas.config import ConfigError, NearDedupConfig, PipelineConfig, load_config
from schemas.records import RepoFile
from tests.conftest import SAMPLE_CONFIG, SAMPLE_REPOS, combine_in_bundles, local_pipeline
from tests.transforms.near_dedup_graph import near_dedup_graph
from transforms.dedup.id_lookup import IdBitmapFn, lookup
from transforms.dedup.minhash import MinHasher, jaccard
from transforms.dedup.near import REASON, REASON_PREVIOUS, SIGNATURES_DIR, UNMEASURED, NearDedup, detail_of, measured_or_not
from transforms.dedup.near_files import SIGNATURES, SignFilesFn
from transforms.dedup.near_versions import SIGNATURE_SCHEMA, earlier_node
from transforms.dedup.tokens import alnum_tokens
from transforms.stage_outputs import STUBS

CONFIG = NearDedupConfig(enabled=True)


def sample(path: str) -> str:
    with open(os.path.join(SAMPLE_REPOS, path), encoding="utf-8") as f:
        return f.read()


def make(file_id: str, content: str, stars: int | None) -> RepoFile:
    return RepoFile(file_id, "local", "o/" + file_id, "m.py", None, "MIT", stars, len(content), content)


def hasher(config: NearDedupConfig = CONFIG) -> MinHasher:
    return MinHasher(config.shingle_tokens, config.permutations, config.bands, config.rows, config.seed)


def detail(survivor: str, text: str, survivor_text: str) -> str:
    return f"survivor={survivor} jaccard={reference_jaccard(text, survivor_text):.3f}"


def true_jaccard(a: str, b: str) -> float:
    h = hasher()
    return jaccard(h.shingles(a), h.shingles(b))


def reference_jaccard(a: str, b: str, n: int = 5) -> float:
    """Jaccard of the sets of n-token shingles, written plainly with the regex of exact dedup."""

    def shingles(text):
        tokens = re.findall(r"\w+", text)
        return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def test_shingles_are_runs_of_exact_dedup_tokens():
    text = sample("textkit/textkit/strings.py")
    # Whitespace and punctuation do not count, as in exact dedup: the whitespace variant has the same shingles.
    assert np.array_equal(hasher().shingles(text), hasher().shingles(sample("mathlib/mathlib/text_utils.py")))
    assert alnum_tokens("x=foo(1) # é").split() == [b"x", b"foo", b"1", "é".encode()]
    assert len(hasher().shingles("a b c d")) == 0  # fewer tokens than one shingle
    edited = text.replace("def ", "def renamed_", 2)
    assert true_jaccard(text, edited) == pytest.approx(reference_jaccard(text, edited))


def test_signature_agreement_estimates_jaccard():
    rng = random.Random(7)
    words = [f"w{i}" for i in range(400)]
    base = [rng.choice(words) for _ in range(3000)]
    h = hasher()
    for rate in (0.01, 0.05, 0.1, 0.2):
        edited = [rng.choice(words) if rng.random() < rate else w for w in base]
        a, b = h.shingles(" ".join(base)), h.shingles(" ".join(edited))
        agreement = float(np.mean(h.signature(a) == h.signature(b)))
        assert agreement == pytest.approx(jaccard(a, b), abs=0.1), rate


def lines_of_code(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [f"value_{rng.randrange(10**6)} = compute_{rng.randrange(10**6)}(arg_{rng.randrange(10**6)})" for _ in range(n)]


def chain(seed: int = 1) -> tuple[str, str, str]:
    """A, B, C where A~B and B~C reach the threshold and A~C does not."""
    base = lines_of_code(seed, 100)
    b = base[:]
    b[0:9] = lines_of_code(seed + 1, 9)
    c = b[:]
    c[50:59] = lines_of_code(seed + 2, 9)
    a_text, b_text, c_text = ("\n".join(x) + "\n" for x in (base, b, c))
    return a_text, b_text, c_text


def run_near_dedup(tmp_path, files, config=CONFIG, previous=()) -> dict:
    """Run NearDedup on a real Beam pipeline; what came out: kept ids, kept stubs as (id, content), rejections as
    (id, stage, reason, detail), the summed tally as {(stage, kind, reason): n}, and the version directory."""
    out_dir = str(tmp_path / "v")
    outputs = os.path.join(str(tmp_path), "outputs")
    with local_pipeline() as p:
        result = (
            p | beam.Create(files) | NearDedup(config, os.path.join(out_dir, SCRATCH_DIR), out_dir, previous_versions=previous)
        )
        result.manifest["near_dedup"] | beam.Map(lambda entry: write_json(os.path.join(out_dir, "near_dedup.json"), entry))
        written = {
            "kept": result.kept | "KeptIds" >> beam.Map(lambda f: f.id),
            "rejected": result.rejected
            | beam.Flatten()
            | "RejectedIds" >> beam.Map(lambda r: (r.id, r.stage, r.reason, r.detail)),
            "tally": result.tally | "SumTally" >> beam.CombinePerKey(sum),
            "stubs": result.extras[STUBS] | "StubIds" >> beam.Map(lambda f: (f.id, f.content)),
        }
        for name, pcoll in written.items():
            pcoll | f"Write_{name}" >> WriteSmallJson(os.path.join(outputs, f"{name}.json"))
    got = {
        name: [tuple(x) if isinstance(x, list) else x for x in read_json(os.path.join(outputs, f"{name}.json"))]
        for name in written
    }
    got["tally"] = {tuple(key): n for key, n in got["tally"]}
    return dict(got, dir=out_dir)


def chain_of(length: int, seed: int = 1000) -> list[str]:
    """x0 ~ x1 ~ ... : each copy replaces the next 9 of 100 lines of the one before it, so neighbours are
    near-duplicates (Jaccard about 0.8) and files two or more apart are not."""
    texts = [lines_of_code(seed, 100)]
    for k in range(1, length):
        edited = texts[-1][:]
        start = (9 * k) % 91
        edited[start : start + 9] = lines_of_code(seed + k, 9)
        texts.append(edited)
    return ["\n".join(t) + "\n" for t in texts]


OTHER = "\n".join(lines_of_code(9, 60))  # like no other file


@pytest.fixture(scope="module")
def chains(tmp_path_factory) -> dict:
    """One run (the default rounds) over the chain a ~ b ~ c, the chain of 30 copies x00 ~ x01 ~ ..., a file like no other,
    later-b, a near copy of earlier-a in an earlier version it names, and pair-a and pair-c, candidates below the
    threshold: clusters apart from each other, so each test reads its own (shared by four tests)."""
    root = tmp_path_factory.mktemp("chains")
    a, b, c = chain()
    thirty = chain_of(30)
    earlier_a, later_b, _ = chain(seed=500)
    earlier = signed_version(root, [make("earlier-a", earlier_a, 1)])
    cand_a, _, cand_c = chain(seed=700)  # they share 4 of the 36 bands
    files = [make("a", a, 3), make("b", b, 50), make("c", c, 3), make("other", OTHER, 1), make("later-b", later_b, 1000)]
    files += [make("pair-a", cand_a, 1), make("pair-c", cand_c, 1)]
    files += [make(f"x{i:02d}", text, 100 - i) for i, text in enumerate(thirty)]
    return dict(
        run_near_dedup(root, files, CONFIG, previous=(earlier,)),
        three=(a, b, c),
        thirty=thirty,
        later=(earlier_a, later_b),
        earlier=earlier,
        candidates=(cand_a, cand_c),
    )


def of(ids, prefix: tuple) -> list:
    """The items whose id (or first field) starts with one of `prefix`, sorted."""
    return sorted(x for x in ids if (x if isinstance(x, str) else x[0]).startswith(prefix))


@pytest.mark.slow  # a Beam pipeline of some sixty stages
def test_a_chain_ends_as_one_cluster_with_the_most_starred_survivor(chains):
    a, b, c = chains["three"]
    assert true_jaccard(a, b) >= 0.7 and true_jaccard(b, c) >= 0.7 and true_jaccard(a, c) < 0.7
    assert of(chains["kept"], ("a", "b", "c", "other")) == ["b", "other"]
    assert of(chains["stubs"], ("a", "b", "c", "other")) == [("b", ""), ("other", "")]  # kept, without content
    # The detail names the survivor and their Jaccard (shingles of the regex's tokens, written plainly).
    assert of(chains["rejected"], ("a", "b", "c", "other")) == [
        ("a", stage_names.NEAR_DEDUP, REASON, detail("b", a, b)),
        ("c", stage_names.NEAR_DEDUP, REASON, detail("b", c, b)),
    ]
    # Read = kept + rejected over the whole run: the four files here, the chain of 30, later-b and the candidates.
    tally = {key: n for key, n in chains["tally"].items() if key[1] != "stat"}
    assert tally == {
        (stage_names.NEAR_DEDUP, "in", ""): 37,
        (stage_names.NEAR_DEDUP, "kept", ""): 5,
        (stage_names.NEAR_DEDUP, "rejected", REASON): 31,
        (stage_names.NEAR_DEDUP, "rejected", REASON_PREVIOUS): 1,
    }
    assert len(chains["kept"]) == 5 and len(chains["rejected"]) == 32
    signatures = pq.read_table(os.path.join(chains["dir"], SIGNATURES_DIR)).to_pylist()
    assert of((s["id"] for s in signatures), ("a", "b", "c", "other")) == ["a", "b", "c", "other"]
    assert all(len(s["minhash"]) == 4 * CONFIG.permutations for s in signatures) and len(signatures) == 37
    entry = read_json(os.path.join(chains["dir"], "near_dedup.json"))
    assert entry["threshold"] == 0.7 and entry["signatures"] == SIGNATURES_DIR


@pytest.mark.slow  # the shared run of some sixty stages
def test_a_chain_of_30_near_copies_keeps_one_file_and_every_rejection_names_it(chains):
    """The survivor (most stars) at one end of the chain: 29 hops from the other end. Every other file is
    rejected naming it, none names a file that was itself rejected. Shortcuts settle a chain of 30 in about
    eight rounds (transforms/dedup/near_clusters.py): labels still changed in the last of the four laid out
    (the stat `label-rounds`), and the union joined the pairs left unsettled (`unsettled-pairs`)."""
    texts = chains["thirty"]
    assert all(reference_jaccard(x, y) >= 0.7 for x, y in zip(texts, texts[1:]))
    assert all(reference_jaccard(x, y) < 0.7 for x, y in zip(texts, texts[2:]))
    assert of(chains["kept"], ("x",)) == ["x00"]
    expected = [(f"x{i:02d}", stage_names.NEAR_DEDUP, REASON, detail("x00", texts[i], texts[0])) for i in range(1, 30)]
    assert of(chains["rejected"], ("x",)) == expected
    assert chains["tally"][stage_names.NEAR_DEDUP, "stat", "label-rounds"] == CONFIG.max_rounds == 4
    assert chains["tally"][stage_names.NEAR_DEDUP, "stat", "unsettled-pairs"] >= 1


@pytest.mark.slow  # a Beam pipeline of some thirty stages, and the shared run
def test_candidates_below_the_threshold_are_not_clustered_when_checked(chains, tmp_path):
    a, c = chains["candidates"]
    assert 0.4 < true_jaccard(a, c) < 0.7
    h = hasher()
    assert set(h.band_keys(h.signature(h.shingles(a)))) & set(h.band_keys(h.signature(h.shingles(c))))  # candidates
    # The shared run checks the pair's true Jaccard: both stay.
    assert of(chains["kept"], ("pair",)) == ["pair-a", "pair-c"] and of(chains["rejected"], ("pair",)) == []
    # Two files next to each other: their labels settle before the first round, so one round is laid out.
    unchecked = NearDedupConfig(enabled=True, check_jaccard=False, max_rounds=1)
    run = run_near_dedup(tmp_path, [make("pair-a", a, 1), make("pair-c", c, 1)], unchecked)
    # Connected through an unchecked candidate, pair-c names a survivor below the threshold, and says so.
    assert run["rejected"] == [("pair-c", stage_names.NEAR_DEDUP, REASON, detail("pair-a", c, a))]


def test_the_stage_reads_the_files_once_and_streams_them_back_from_spill_files():
    """Only the signing step reads `files` (it spills them): the local runner never holds the corpus while the
    clusters are decided, and no content crosses a shuffle. The check and the drop get their decisions by joins
    on ids, not by side-input lookups (each one weighed by walking every loaded module); only an earlier
    version's signatures, not in spill files, are looked up."""
    p, files = near_dedup_graph()
    readers, side_inputs = [], {}

    class Readers(PipelineVisitor):
        def visit_transform(self, node):
            if files in node.inputs:
                readers.append(node.full_label)
            side_inputs[node.full_label] = node.side_inputs

    p.visit(Readers())
    assert readers == ["Near/SignFiles/ParDo(SignFilesFn)"]
    check, survivors = "Near/ShinglesOfCandidateEnds", "Near/ShinglesOfSurvivorEnds"
    drop = "Near/DropNearDuplicates/ParDo(StageDoFn)/ParDo(StageDoFn)"
    assert not side_inputs[check] and not side_inputs[survivors] and not side_inputs[drop]


def test_a_survivor_next_to_its_file_takes_the_checks_jaccard_and_only_others_are_measured_again():
    """A survivor edge that is a checked pair keeps the check's Jaccard; one joined through other files goes to
    the survivor pass; a checked pair that is no survivor edge gives nothing."""
    edge = ((-9, "s"), (-1, "f"))
    assert list(measured_or_not((edge, {"survivor": [None], "similar": [0.82]}))) == [(edge, 0.82)]
    (unmeasured,) = measured_or_not((edge, {"survivor": [None], "similar": []}))
    assert unmeasured.tag == UNMEASURED and unmeasured.value == edge
    assert list(measured_or_not((edge, {"survivor": [], "similar": [0.9]}))) == []


def test_a_rejections_detail_names_its_survivor_and_their_jaccard():
    """`survivor=<id> jaccard=<J>` (three decimals), and the version of a survivor from an earlier one."""
    assert detail_of((-5, "3f2a"), 0.83333) == "survivor=3f2a jaccard=0.833"
    assert detail_of(earlier_node("9b1c", "corpus/v0001"), 0.7) == "survivor=9b1c version=corpus/v0001 jaccard=0.700"


def test_bad_near_dedup_config_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"dedup.near.bands x dedup.near.rows"):
        NearDedupConfig(bands=30, rows=10)
    with pytest.raises(ConfigError, match=r"dedup.near.threshold"):
        NearDedupConfig(threshold=1.5)
    assert load_config(SAMPLE_CONFIG).dedup.near.enabled  # the sample turns it on
    assert not PipelineConfig("t").dedup.near.enabled  # off by default: the paper's corpus


def signed_version(root, files, config: NearDedupConfig = CONFIG) -> str:
    """A version directory as a near-dedup run leaves it, written without Beam: the signatures SignFilesFn gives
    `files` in a Parquet shard, and a manifest holding the stage's entry and listing the shard."""
    version = root / "one" / "v"
    fn = SignFilesFn(config, str(root / SCRATCH_DIR))
    fn.setup()
    fn.start_bundle()
    signatures = [out.value for f in files for out in fn.process(f) if getattr(out, "tag", None) == SIGNATURES]
    shard = f"{SIGNATURES_DIR}/part-00000-of-00001.parquet"
    (version / SIGNATURES_DIR).mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([s.to_row() for s in signatures], SIGNATURE_SCHEMA), version / shard)
    entry = NearDedup(config, "scratch", str(version)).manifest_entry()
    write_json(str(version / "manifest.json"), {"near_dedup": entry, "files": {shard: {}}})
    return str(version)


@pytest.mark.slow  # the shared run of some sixty stages
def test_a_later_version_drops_near_duplicates_of_an_earlier_one(chains, tmp_path):
    earlier_a, later_b = chains["later"]
    first_dir = chains["earlier"]
    # The earlier file survives whatever the stars: later-b goes, naming it and its version.
    assert of(chains["kept"], ("later", "earlier")) == []
    # Against an earlier version the Jaccard is estimated from the signatures (within about 0.03 at 256 values).
    ((file_id, stage, reason, detail_text),) = of(chains["rejected"], ("later", "earlier"))
    named, similarity = detail_text.rsplit("=", 1)
    expected = ("later-b", stage_names.NEAR_DEDUP, REASON_PREVIOUS, "survivor=earlier-a version=one/v jaccard")
    assert (file_id, stage, reason, named) == expected
    assert abs(float(similarity) - reference_jaccard(earlier_a, later_b)) < 0.08
    assert read_json(os.path.join(chains["dir"], "near_dedup.json"))["previous_versions"] == ["one/v"]

    with pytest.raises(ConfigError, match=r"dedup.previous_versions\[0\].*dedup.near.seed=42"):
        NearDedup(NearDedupConfig(enabled=True, seed=7), "scratch", "v", previous_versions=(first_dir,))
    with pytest.raises(ConfigError, match=r"dedup.previous_versions\[0\].*no near-dedup signatures"):
        NearDedup(CONFIG, "scratch", "v", previous_versions=(str(tmp_path),))


def test_id_bitmap_skips_absent_ids_and_ignores_bundling():
    ids = [f"id-{i}" for i in range(1000)]
    bitmap = combine_in_bundles(IdBitmapFn(), ids, 1)
    assert np.array_equal(bitmap, combine_in_bundles(IdBitmapFn(), ids, 7))
    values_of = {record_id: [record_id.upper()] for record_id in ids}
    assert all(lookup(values_of, bitmap, record_id) == [record_id.upper()] for record_id in ids)
    absent = [f"other-{i}" for i in range(1000)]
    assert lookup({}, bitmap, "other-0") == [] and sum(lookup({k: [1] for k in absent}, bitmap, k) == [1] for k in absent) < 5
