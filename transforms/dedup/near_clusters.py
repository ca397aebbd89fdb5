"""Near-dedup's clusters: the connected components of the similar pairs, a few rounds in Beam, then a union.

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
chain of 30, 16 for 1,000 in rank order), not one hop a round, and a pair or a star
settles before the first round. A Beam graph is fixed before it runs, and each round
costs a stage however few labels still change, so only `max_rounds` rounds are laid
out; then the rest is finished exactly:

- every node tells each neighbour its label (one more GroupByKey); an edge whose two
  ends still hold different labels gives the pair of labels (`unsettled pairs`,
  counted by the stat `unsettled-pairs`);
- one union-find over those pairs (a CombineGlobally, lifted per bundle) maps each of
  their labels to the least label it is joined to;
- each node takes its label's root (a join on labels).

Labels only fall and name a node of the node's component, and the least node of a
component keeps itself as label, so the labels of a component with the pairs between
them are connected and their least is the component's least node: the result is the
connected components, whatever `max_rounds` is. What the one union-find holds is the
labels of unsettled pairs only: fewer with each round, none where every cluster
settled. The stat `label-rounds` is the last round that changed a label.
"""

from __future__ import annotations

import apache_beam as beam

STATE, LABEL, JOIN, LEAVE = range(4)  # kinds of message: a node's own state, a label, "I point at you", "I left you"


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


def tell_label(state):
    """A node's state after the last round → its label, to itself and to each of its neighbours."""
    node, (_, (label, neighbours, *_)) = state
    yield node, (STATE, label)
    for other in neighbours:
        yield other, (LABEL, label)


def unsettled_pairs(labels_told):
    """(node, its label and its neighbours') → (its label, a smaller label of a neighbour), once per such label:
    an edge whose ends disagree is given by the end with the larger label."""
    _, told = labels_told
    own, others = None, set()
    for kind, label in told:
        if kind == STATE:
            own = label
        else:
            others.add(label)
    for other in sorted(others):
        if other < own:
            yield own, other


def root_of(parent: dict, node):
    """The root of node's tree in a union-find forest (parent holds non-roots only), halving the path walked."""
    up = parent.get(node, node)
    while up != node:
        grand = parent.get(up, up)
        if grand != up:
            parent[node] = grand
        node, up = grand, parent.get(grand, grand)
    return node


def union(parent: dict, a, b) -> None:
    """Joins the trees of a and b under the lesser root."""
    root_a, root_b = root_of(parent, a), root_of(parent, b)
    if root_a != root_b:
        parent[max(root_a, root_b)] = min(root_a, root_b)


class LeastLabelsFn(beam.CombineFn):
    """Unsettled pairs of labels → {label: the least label it is joined to} for each label that is not that
    least itself: a union-find whose forest is the accumulator, so a bundle's pairs fold before the shuffle."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, parent: dict, pair) -> dict:
        union(parent, *pair)
        return parent

    def merge_accumulators(self, accumulators) -> dict:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for parent in accumulators:
            for node, up in parent.items():
                union(merged, node, up)
        return merged

    def extract_output(self, parent: dict) -> dict:
        return {node: root_of(parent, node) for node in list(parent)}


def take_root(label_nodes):
    """(label, {"node": nodes holding it, "root": [its root] or none}) → (node, root) for each node."""
    label, groups = label_nodes
    root = next(iter(groups["root"]), label)
    for node in groups["node"]:
        yield node, root


class ConnectedComponents(beam.PTransform):
    """Edges (node, node) → (node, least node of its component) for every node in an edge; and, as
    `self.rounds`, the last round that changed a label (nothing without edges), as `self.unsettled` the
    unsettled pairs of labels the union joined."""

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
        last_round = beam.CombineGlobally(max).without_defaults()
        self.rounds = states | "LastChange" >> beam.Map(last_change_of) | "LastRound" >> last_round
        told = states | "TellLabels" >> beam.FlatMap(tell_label) | "GatherTold" >> beam.GroupByKey()
        pairs = self.unsettled = told | "UnsettledPairs" >> beam.FlatMap(unsettled_pairs)
        roots = (
            pairs
            | "LeastLabels" >> beam.CombineGlobally(LeastLabelsFn()).without_defaults()
            | "Roots" >> beam.FlatMap(dict.items)
        )
        holders = states | "ByLabel" >> beam.Map(lambda state: label_of(state)[::-1])
        return {"node": holders, "root": roots} | "JoinRoots" >> beam.CoGroupByKey() | "TakeRoots" >> beam.FlatMap(take_root)
