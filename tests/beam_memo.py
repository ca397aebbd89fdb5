"""Beam's repeated bookkeeping, memoized for the test suite.

The suite builds and runs hundreds of small graphs, and for small graphs Beam's
bookkeeping costs more than the data. It does four things again and again that give the
same answer each time:

- `userstate.get_dofn_specs(dofn)` walks every method of the DoFn and takes its
  signature, about 1 ms, eight times per ParDo. The answer depends only on the class
  (the defaults of its methods), unless the instance carries bound methods of its own.
- `PipelineOptions.view_as(cls)` builds an argparse parser for `cls` and parses the
  flags again, twice per transform and once per type check. The parse depends only on
  the class and the flags; each view gets a copy of the parsed values and shares the
  options' values, as Beam's does.
- `decorators.get_signature(fn)` runs `inspect.signature` on the same functions again:
  for each ParDo's type hints and arguments while the graph is built, and for each
  DoFn's methods whenever a bundle's operations are made. A signature depends only on
  the function, and on whether it is bound (which drops `self`). In a warm run of the
  sample's corpus stage: 6,236 calls, 0.16-0.18 s of its 2.6 s; remembered, 0.03 s.
- Beam's pickler compresses every pickled DoFn, coder and config with bz2 at level 9,
  and decompresses each one again for every stage that runs it: in a warm run of the
  sample's corpus stage, 564 compressions (0.21-0.26 s) and 997 decompressions (0.17 s)
  of its 2.7 s, of which 551 and 997 repeat a payload seen before. The answers are bz2's
  own bytes, remembered per payload, so Beam's unpatched worker processes read them.

The first two were a third of the CPU of a small corpus run, the last two a fifth of
what was left. `tests/test_beam_memo.py`
checks that each gives what Beam's own function gives, so a Beam upgrade that changes
them fails there. Only the test processes are patched: the CLI, and Beam's worker
processes in multi_processing mode, run Beam as it is.
"""

from __future__ import annotations

import bz2
import copy
import functools
import types
import weakref

from apache_beam.internal import cloudpickle_pickler
from apache_beam.options import pipeline_options
from apache_beam.transforms import core, ptransform, userstate, util
from apache_beam.typehints import decorators

BEAMS_GET_DOFN_SPECS = userstate.get_dofn_specs
BEAMS_VIEW_AS = pipeline_options.PipelineOptions.view_as
BEAMS_GET_SIGNATURE = decorators.get_signature
_specs: dict[type, tuple] = {}
_parsed: dict[tuple, tuple] = {}
_signatures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function → {bound: signature}
PICKLES = 4096  # payloads remembered each way, least recently used dropped: at most about 16 MB (about 2 kB each)
LARGEST_PICKLE = 1 << 20  # larger payloads are not kept


def get_dofn_specs(dofn):
    """Beam's get_dofn_specs, remembered per DoFn class."""
    if any(isinstance(value, types.MethodType) for value in vars(dofn).values()):
        return BEAMS_GET_DOFN_SPECS(dofn)  # methods bound on the instance: not the class' answer
    cls = type(dofn)
    if cls not in _specs:
        _specs[cls] = BEAMS_GET_DOFN_SPECS(dofn)
    state_specs, timer_specs = _specs[cls]
    return set(state_specs), set(timer_specs)


def view_as(self, cls):
    """Beam's view_as, with the parse of the flags remembered per (class, flags)."""
    if self._flags is None:  # parsed from sys.argv
        return BEAMS_VIEW_AS(self, cls)
    key = (cls, tuple(self._flags))
    if key not in _parsed:
        view = cls(self._flags)
        _parsed[key] = (view._visible_options, view._visible_option_list())
    parsed, names = _parsed[key]
    namespace = copy.deepcopy(parsed)  # a fresh parse's values: lists (--experiments) are appended to
    view = object.__new__(cls)
    object.__setattr__(view, "_flags", self._flags)
    object.__setattr__(view, "_visible_options", namespace)
    for name in names:  # as Beam's: a key's first value is kept, so every view shares it
        if name not in self._all_options:
            self._all_options[name] = getattr(namespace, name)
    object.__setattr__(view, "_all_options", self._all_options)
    return view


def get_signature(fn):
    """Beam's get_signature, remembered per function, bound or not; held weakly, so a test's lambdas go."""
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, types.FunctionType):
        function, bound = fn.__func__, True
    elif isinstance(fn, types.FunctionType):
        function, bound = fn, False
    else:  # partials, classes, callable instances: more than a function decides their signature
        return BEAMS_GET_SIGNATURE(fn)
    known = _signatures.setdefault(function, {})
    if bound not in known:
        known[bound] = BEAMS_GET_SIGNATURE(fn)
    return known[bound]


@functools.lru_cache(maxsize=PICKLES)
def _compressed(data: bytes, level: int) -> bytes:
    return bz2.compress(data, level)


@functools.lru_cache(maxsize=PICKLES)
def _decompressed(data: bytes) -> bytes:
    return bz2.decompress(data)


def compress(data, compresslevel: int = 9) -> bytes:
    """bz2.compress, remembered per payload."""
    if type(data) is not bytes or len(data) > LARGEST_PICKLE:
        return bz2.compress(data, compresslevel)
    return _compressed(data, compresslevel)


def decompress(data) -> bytes:
    """bz2.decompress, remembered per payload."""
    if type(data) is not bytes or len(data) > LARGEST_PICKLE:
        return bz2.decompress(data)
    return _decompressed(data)


def install() -> None:
    userstate.get_dofn_specs = get_dofn_specs
    pipeline_options.PipelineOptions.view_as = view_as
    for module in (decorators, core, ptransform, util):  # each holds the function under its own name
        module.get_signature = get_signature
    cloudpickle_pickler.bz2 = types.SimpleNamespace(compress=compress, decompress=decompress)  # its only uses of bz2
