"""Near-dedup's clusters: connected components to the end in Beam, or a run that fails saying so."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_pipeline
from transforms.dedup.near_clusters import ClustersUnsettled, ConnectedComponents


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
        yield p | beam.Create(edges) | clusters, clusters.rounds


@pytest.mark.slow  # a Beam pipeline of some twenty-five stages
def test_components_are_whole_for_chains_in_any_rank_order_and_random_graphs():
    """Chains of 30 with the survivor at an end, in the middle, shuffled, and sparse random graphs with many
    components: every node gets the least node of its component, as a union-find finds them, within 10 rounds
    where one hop a round would need up to 29."""
    edges = []
    for order in ("ascending", "descending", "shuffled", "zigzag"):
        edges += chain(30, order, order)
    for seed in range(3):
        edges += random_graph(60, 50, f"g{seed}-", seed)
    edges += [((-9, "star"), (0, f"leaf{i}")) for i in range(40)]
    expected = union_find_least(edges)
    assert len(set(expected.values())) > 10  # many components, some of one edge
    run = run_components(edges, max_rounds=10)
    labels, rounds = next(run)
    assert_that(labels, equal_to(sorted(expected.items())), label="Labels")
    assert_that(rounds | beam.Map(lambda r: 1 <= r < 10), equal_to([True]), label="Rounds")
    next(run, None)


@pytest.mark.slow  # a Beam pipeline of some ten stages
def test_labels_still_changing_in_the_last_round_fail_the_run():
    """Three rounds cannot carry a label along a chain of 30: the run fails naming the key, rather than keep
    several files of one cluster."""
    run = run_components(chain(30, "ascending", "x"), max_rounds=3)
    with pytest.raises(ClustersUnsettled, match=r"round 3, the last of dedup.near.max_rounds=3.*raise dedup.near.max_rounds"):
        next(run)
        next(run, None)
