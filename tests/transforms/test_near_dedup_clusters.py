"""Near-dedup's clusters: connected components, exact whatever number of label rounds is laid out."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import combine_in_bundles, local_pipeline
from transforms.dedup.near_clusters import ConnectedComponents, LeastLabelsFn


def chain(length: int, order: str, tag: str) -> list[tuple]:
    """Edges of a chain of nodes (rank, name); `order` places the ranks along it."""
    ranks = list(range(length))
    if order == "descending":
        ranks.reverse()
    elif order == "shuffled":
        random.Random(length).shuffle(ranks)
    elif order == "zigzag":  # the two least ranks at the two ends, the rest alternating inwards
        ranks = [i // 2 if i % 2 == 0 else length - 1 - i // 2 for i in range(length)]
    nodes = [(rank, f"{tag}{rank:05d}") for rank in ranks]
    return list(zip(nodes, nodes[1:]))


def random_graph(nodes: int, edges: int, tag: str, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    names = [(rng.randrange(-50, 0), f"{tag}{i:04d}") for i in range(nodes)]
    pairs = [tuple(rng.sample(names, 2)) for _ in range(edges)]
    return pairs


def union_find_least(edges: list[tuple]) -> dict:
    """node → least node of its component, by a plain union-find."""
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {node: root(node) for node in parent}


def run_components(edges, max_rounds):
    with local_pipeline() as p:
        clusters = ConnectedComponents(max_rounds)
        yield p | beam.Create(edges) | clusters, clusters.rounds, clusters.unsettled | beam.combiners.Count.Globally()


def mixed_graph() -> list[tuple]:
    """Chains of 30 with the survivor at an end, in the middle, shuffled; sparse random graphs with many
    components, some of one edge; a star."""
    edges = []
    for order in ("ascending", "descending", "shuffled", "zigzag"):
        edges += chain(30, order, order)
    for seed in range(3):
        edges += random_graph(60, 50, f"g{seed}-", seed)
    return edges + [((-9, "star"), (0, f"leaf{i}")) for i in range(40)]


@pytest.mark.slow  # a Beam pipeline of some twenty stages
def test_components_settle_in_the_rounds_for_chains_in_any_rank_order_and_random_graphs():
    """Every node gets the least node of its component, as a union-find finds them, within 10 rounds where one
    hop a round would need up to 29; nothing is left for the union after them."""
    edges = mixed_graph()
    expected = union_find_least(edges)
    assert len(set(expected.values())) > 10  # many components, some of one edge
    run = run_components(edges, max_rounds=10)
    labels, rounds, unsettled = next(run)
    assert_that(labels, equal_to(sorted(expected.items())), label="Labels")
    assert_that(rounds | beam.Map(lambda r: 1 <= r < 10), equal_to([True]), label="Rounds")
    assert_that(unsettled, equal_to([0]), label="Unsettled")
    next(run, None)


@pytest.mark.slow  # a Beam pipeline of some ten stages
def test_components_are_whole_when_the_rounds_end_before_the_labels_settle():
    """One round cannot carry a label along a chain of 30, or of 300 in rank order: the pairs still unsettled
    after it are joined by the union, and every node still gets the least node of its component."""
    edges = mixed_graph() + chain(300, "ascending", "long")
    expected = union_find_least(edges)
    run = run_components(edges, max_rounds=1)
    labels, rounds, unsettled = next(run)
    assert_that(labels, equal_to(sorted(expected.items())), label="Labels")
    assert_that(rounds, equal_to([1]), label="Rounds")
    assert_that(unsettled | beam.Map(lambda n: n > 30), equal_to([True]), label="Unsettled")
    next(run, None)


def test_least_labels_are_the_same_however_the_pairs_are_bundled():
    """The union-find of unsettled pairs gives each label that is not least in its component that least label,
    in one bundle or dealt into seven and merged."""
    pairs = random_graph(400, 300, "n", seed=7)
    components = union_find_least(pairs)
    expected = {node: least for node, least in components.items() if node != least}
    assert len(expected) > 100
    for bundles in (1, 7):
        assert combine_in_bundles(LeastLabelsFn(), pairs, bundles) == expected
