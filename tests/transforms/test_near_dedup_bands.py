"""Near-dedup's LSH buckets by an external sort: the (band key, (node, sketch)) pairs reach no GroupByKey, and each
file of a bucket is linked to the earlier file whose sketch agrees most."""

from __future__ import annotations

import collections
import itertools
import os
import random

import apache_beam as beam
import pytest
from apache_beam.pipeline import PipelineVisitor
from apache_beam.testing.util import assert_that, equal_to

from infra.writers import WriteRunsFn
from tests.conftest import local_pipeline
from tests.transforms.near_dedup_graph import near_dedup_graph
from transforms.dedup.near_bands import (
    LINK_WINDOW,
    BucketEdgesFn,
    EdgesOfBands,
    band_partition,
    bucket_edges,
    held_pair_bytes,
)
from transforms.dedup.near_versions import EARLIER


def test_the_band_pairs_reach_no_group_by_key_only_run_writers():
    """Both kinds of (band key, node) pairs, this run's and the earlier versions', go only to run writers
    (which pass on (partition, run path)): no GroupByKey, nor a Flatten in front of one, gets them."""
    p, _ = near_dedup_graph()
    pairs, consumers, group_inputs = [], {}, []

    class Graph(PipelineVisitor):
        def visit_transform(self, node):
            if node.full_label.startswith("Near/SignFiles/"):
                pairs.append(node.outputs[None])  # the main output: "bands"
            if node.full_label == "Near/BandEarlier":
                pairs.extend(node.outputs.values())
            for pcoll in node.inputs:
                consumers.setdefault(pcoll, []).append(node)
            if isinstance(node.transform, beam.GroupByKey):
                group_inputs.extend(node.inputs)

    p.visit(Graph())
    assert len(pairs) == 2
    for pcoll in pairs:
        fns = [getattr(getattr(n.transform, "fn", None), "__class__", None) for n in consumers[pcoll]]
        assert fns == [WriteRunsFn], [n.full_label for n in consumers[pcoll]]
        assert pcoll not in group_inputs


def reference_edges(pairs):
    """Each bucket's files in rank order, each linked to the earlier one (of the first LINK_WINDOW) sharing the most
    sketch bytes, the least on a tie: written plainly."""
    edges = set()
    for _, bucket in itertools.groupby(sorted(set(pairs)), key=lambda pair: pair[0]):
        members = []
        for _, (node, sketch) in bucket:
            if members and members[-1][0] == node:
                continue
            if members:
                agreement = [sum(x == y for x, y in zip(s, sketch)) for _, s in members[:LINK_WINDOW]]
                edges.add((members[agreement.index(max(agreement))][0], node))
            members.append((node, sketch))
    return edges


def test_a_file_links_to_the_earlier_file_of_its_bucket_whose_sketch_agrees_most():
    """Not to the bucket's least file (a star): the check would drop that link when the two are not similar."""
    least, far, near = (-9, "least"), (-5, "far"), (-1, "near")
    members = [(least, bytes([1] * 64)), (far, bytes([2] * 64)), (near, bytes([2] * 60 + [3] * 4))]
    assert list(bucket_edges(members)) == [(least, far), (far, near)]
    # Listed twice, a file gives no edge to itself; a tie goes to the least.
    halfway = (near, bytes([1] * 32 + [2] * 32))
    assert list(bucket_edges([members[0], members[0], members[1], halfway])) == [(least, far), (least, near)]


def bands_test_files() -> tuple[list, set]:
    """Files' bands: buckets across partitions, repeated pairs, earlier versions' nodes and negative band keys; and their edges
    by `reference_edges`."""
    rng = random.Random(7)
    nodes = [(-rng.randrange(5), f"f{i}") for i in range(40)] + [(EARLIER, f"e{i} in one/v") for i in range(3)]
    members = [(node, bytes(rng.randrange(3) for _ in range(64))) for node in nodes]
    keys = [rng.randrange(-(2**63), 2**63) for _ in range(25)]
    pairs = [(rng.choice(keys), rng.choice(members)) for _ in range(400)]
    pairs += pairs[:50]  # a file listed twice in a bucket gives no edge to itself
    expected = reference_edges(pairs)
    assert len(expected) > 100 and any(edge[0][0] == EARLIER for edge in expected)
    return as_files(pairs), expected


def as_files(pairs: list) -> list:
    """The pairs as the stage's elements, a file's band keys with it: (band keys, (node, sketch)), the first 400 by
    member, the repeats one key each."""
    keys_of = collections.defaultdict(list)
    for key, member in pairs[:400]:
        keys_of[member].append(key)
    return [(keys, member) for member, keys in keys_of.items()] + [([key], member) for key, member in pairs[400:]]


def edges_in_bundles(files: list, bundles: int, scratch: str) -> set:
    """EdgesOfBands' two steps without a runner: WriteRunsFn over `bundles` bundles (each spills its own runs),
    the run paths grouped by partition, then BucketEdgesFn on each partition's runs."""
    write = WriteRunsFn(scratch, band_partition, held_pair_bytes)
    write.setup()
    runs = collections.defaultdict(list)
    for b in range(bundles):
        write.start_bundle()
        spilled = [out for file_bands in files[b::bundles] for out in write.process(file_bands)]
        spilled += [out.value for out in write.finish_bundle()]
        for partition, path in spilled:
            runs[partition].append(path)
    bucket = BucketEdgesFn()
    bucket.setup()
    return {edge for partition, paths in runs.items() for edge in bucket.process((partition, sorted(paths)))}


def test_bucket_edges_are_the_same_however_bundled(tmp_path):
    """One bundle or many, each writing runs of its own: the merged runs give the same edges as grouping every
    pair at once."""
    files, expected = bands_test_files()
    for bundles in (1, 3, 8):
        assert edges_in_bundles(files, bundles, str(tmp_path / f"scratch{bundles}")) == expected, bundles


@pytest.mark.slow  # a Beam pipeline
def test_edges_of_bands_in_a_pipeline_are_the_reference_edges(tmp_path):
    """The composite on two inputs (a run writer each) gives the reference edges; its runs go to the scratch
    directory. Worker processes run it in the multi_processing sample build."""
    files, expected = bands_test_files()
    with local_pipeline() as p:
        halves = (p | "First" >> beam.Create(files[::2]), p | "Second" >> beam.Create(files[1::2]))
        edges = halves | EdgesOfBands(str(tmp_path / "scratch"))
        assert_that(edges | beam.Distinct(), equal_to(sorted(expected)))
    assert os.listdir(tmp_path / "scratch")  # the runs went to the scratch directory
