"""Which of many patterns occur in a text, in one pass of Hyperscan (Intel's multi-pattern engine).

The scrub stage's PII prefilter, the quality filters' generator phrases and
decontamination's HumanEval needles each ask this of every file: one scan over the
UTF-8 bytes answers for all their patterns at once, at hundreds of MB/s, where a loop
of `in` or a regex per pattern reads the text once per pattern.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class PatternSet:
    """Patterns (regular expressions, or literal bytes with `literal`) compiled once; `found` says which occur.

    Build it once per process (its compilation is the costly part) and share it: each
    thread gets its own scratch space, which is what Hyperscan needs per concurrent scan.
    """

    def __init__(self, patterns: Sequence[bytes], literal: bool = False):
        import hyperscan

        self.database = hyperscan.Database()
        self.database.compile(
            expressions=list(patterns),
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=hyperscan.HS_FLAG_SINGLEMATCH,
            literal=literal,
        )
        self._local = threading.local()

    def found(self, data: bytes) -> set[int]:
        """The indexes of the patterns that occur in `data`."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            import hyperscan

            scratch = self._local.scratch = hyperscan.Scratch(self.database)
        ids: set[int] = set()
        self.database.scan(data, match_event_handler=lambda pattern_id, *_: ids.add(pattern_id), scratch=scratch)
        return ids
