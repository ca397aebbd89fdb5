"""Near-dedup's clusters: the connected components of the similar pairs, computed to the end in Beam.

Every file (a node: its survivor rank, so the least node of a component is its
survivor) holds a label, at first the least of itself and its neighbours. Each round
is one GroupByKey of messages by node; a node takes the least label it received, and
when its label changes it tells

- its neighbours the new label (label propagation: one hop a round),
- the node it used to point at, which takes the new label too and forgets it
  (hooking: the old label's own tree learns of the smaller label),
- the node it now points at, which from then on sends it every label it takes
  (shortcutting: a node jumps to its label's label).

With shortcuts a label crosses a chain in about 1.2 x log2(length) + 2 rounds (8 for a
chain of 30, 16 for 1,000 in rank order; see the tests), not one hop a round. Labels
only fall and name a node of the component, so when a round changes no label every
edge has one label at both ends: each component carries its least node. A Beam graph
is fixed before it runs, so `max_rounds` rounds are laid out; if a label still
changes in the last one, the run fails (`ClustersUnsettled`) rather than keep two
files of one cluster. The stat `label-rounds` is the last round that changed a label.
"""

from __future__ import annotations

import apache_beam as beam

STATE, LABEL, JOIN, LEAVE = range(4)  # kinds of message: a node's own state, a label, "I point at you", "I left you"


class ClustersUnsettled(RuntimeError):
    """Labels still changed in the last of `max_rounds` rounds: some cluster is not whole yet."""


def label_changed(node, old, new, neighbours):
    """The messages a node sends when its label goes from `old` to `new`."""
    for other in neighbours:
        yield other, (LABEL, new)
    if old != node:
        yield old, (LEAVE, (new, node))
    if new != node:
        yield new, (JOIN, node)


def first_labels(adjacency):
    """(node, neighbours) → its state (the least of itself and its neighbours) and the messages of that change."""
    node, neighbours = adjacency
    neighbours = sorted(set(neighbours))
    label = min(node, neighbours[0])
    yield node, (STATE, (label, neighbours, frozenset(), 0))
    yield from label_changed(node, node, label, neighbours)


def next_labels(messages, round_number: int):
    """(node, messages) → its state after this round, and what it tells others."""
    node, received = messages
    labels, joined, left = [], set(), set()
    for kind, value in received:
        if kind == STATE:
            label, neighbours, followers, last_change = value
        elif kind == LABEL:
            labels.append(value)
        elif kind == JOIN:
            joined.add(value)
        else:
            labels.append(value[0])
            left.add(value[1])
    least = min([label, *labels])
    if least != label:
        last_change = round_number
        told = (followers | joined) - left
        yield from label_changed(node, label, least, neighbours)
    else:
        told = joined
    for follower in told:
        yield follower, (LABEL, least)
    yield node, (STATE, (least, neighbours, (followers | joined) - left, last_change))


def is_state(message) -> bool:
    return message[1][0] == STATE


def label_of(state):
    """(node, (STATE, (label, ...))) → (node, label)."""
    node, (_, (label, *_)) = state
    return node, label


def last_change_of(state) -> int:
    node, (_, (*_, last_change)) = state
    return last_change


def last_round(values) -> int:
    return max(values, default=0)


def check_settled(last_change: int, max_rounds: int) -> int:
    """The last round that changed a label; fails the run if that was the last round laid out."""
    if last_change >= max_rounds:
        raise ClustersUnsettled(
            f"near-dedup: cluster labels still changed in round {last_change}, the last of dedup.near.max_rounds="
            f"{max_rounds}, so a cluster may keep more than one file; raise dedup.near.max_rounds"
        )
    return last_change


class ConnectedComponents(beam.PTransform):
    """Edges (node, node) → (node, least node of its component) for every node in an edge; and, as
    `self.rounds`, the last round that changed a label (the run fails if it is `max_rounds`)."""

    def __init__(self, max_rounds: int):
        super().__init__()
        self.max_rounds = max_rounds

    def expand(self, edges):
        messages = (
            edges
            | "BothDirections" >> beam.FlatMap(lambda e: [e, (e[1], e[0])])
            | "Adjacency" >> beam.GroupByKey()
            | "FirstLabels" >> beam.FlatMap(first_labels)
        )
        for i in range(1, self.max_rounds + 1):
            messages = messages | f"GatherLabels{i}" >> beam.GroupByKey() | f"KeepLeastLabel{i}" >> beam.FlatMap(next_labels, i)
        states = messages | "States" >> beam.Filter(is_state)
        self.rounds = (
            states
            | "LastChange" >> beam.Map(last_change_of)
            | "LastRound" >> beam.CombineGlobally(last_round)
            | "CheckSettled" >> beam.Map(check_settled, self.max_rounds)
        )
        return states | "Labels" >> beam.Map(label_of)
