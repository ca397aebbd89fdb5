"""Near-dedup's Jaccard check by an external sort: the shingle hashes of candidate files reach no GroupByKey."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.pipeline import PipelineVisitor
from apache_beam.testing.util import assert_that, equal_to

from infra.writers import WriteRunsFn
from tests.conftest import local_pipeline
from tests.transforms.near_dedup_graph import near_dedup_graph
from transforms.dedup.near_check import EdgeSimilarities
from transforms.dedup.near_versions import EARLIER, MINHASH, SHINGLES, SIGNATURE_DTYPE


def test_the_check_values_reach_no_group_by_key_only_run_writers():
    """What the ends of candidate edges send (shingle hashes; earlier files' signatures) goes only to run
    writers, which pass on (partition, run path): no GroupByKey gets the shingles."""
    p, _ = near_dedup_graph()
    labels, consumers, group_inputs = {}, {}, []

    class Graph(PipelineVisitor):
        def enter_composite_transform(self, node):
            if node.full_label == "Near/SettleCandidateSignatures":
                labels[node.full_label] = node.outputs[None]

        def visit_transform(self, node):
            if node.full_label == "Near/ShinglesOfCandidateEnds":
                labels[node.full_label] = node.outputs[None]
            for pcoll in node.inputs:
                consumers.setdefault(pcoll, []).append(node)
            if isinstance(node.transform, beam.GroupByKey):
                group_inputs.extend(node.inputs)

    p.visit(Graph())
    assert set(labels) == {"Near/ShinglesOfCandidateEnds", "Near/SettleCandidateSignatures"}
    for label, pcoll in labels.items():
        fns = [getattr(getattr(n.transform, "fn", None), "__class__", None) for n in consumers[pcoll]]
        assert fns == [WriteRunsFn], (label, [n.full_label for n in consumers[pcoll]])
        assert pcoll not in group_inputs


def shingle_bytes(values) -> bytes:
    return np.array(sorted(values), dtype=np.uint64).tobytes()


def test_each_edge_gets_the_jaccard_of_its_two_ends(tmp_path):
    """Exact Jaccard of two shingle sets, or the share of equal signature values; ends in either order,
    spread over several bundles and partitions."""
    close, far = ((0, "a"), (0, "b")), ((0, "a"), (0, "c"))
    earlier_close, earlier_far = ((EARLIER, "x in one/v"), (0, "d")), ((EARLIER, "y in one/v"), (0, "f"))
    signature = np.arange(256, dtype=SIGNATURE_DTYPE)
    near_signature = signature.copy()
    near_signature[:40] += 1  # 216 of 256 equal: 0.84
    far_signature = signature.copy()
    far_signature[:100] += 1  # 156 of 256: 0.61
    values = [
        (close, (SHINGLES, shingle_bytes(range(100)))),
        (far, (SHINGLES, shingle_bytes(range(100)))),
        (earlier_close, (MINHASH, signature.tobytes())),
        (far, (SHINGLES, shingle_bytes(range(40, 140)))),  # 60 of 140: 0.43
        (close, (SHINGLES, shingle_bytes(range(10, 110)))),  # 90 of 110: 0.82
        (earlier_far, (MINHASH, far_signature.tobytes())),
        (earlier_close, (MINHASH, near_signature.tobytes())),
        (earlier_far, (MINHASH, signature.tobytes())),
    ]
    with local_pipeline() as p:
        first, second = p | "First" >> beam.Create(values[:4]), p | "Second" >> beam.Create(values[4:])
        similarities = (first, second) | EdgeSimilarities(str(tmp_path / "scratch"))
        expected = [(close, 90 / 110), (far, 60 / 140), (earlier_close, 216 / 256), (earlier_far, 156 / 256)]
        assert_that(similarities, equal_to(expected))
