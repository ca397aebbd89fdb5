"""The suite's memo of Beam's introspection (tests/beam_memo.py) answers as Beam does."""

from __future__ import annotations

import base64
import bz2
import functools
import gc
import weakref

import apache_beam as beam
from apache_beam.internal import cloudpickle_pickler, pickler
from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, StandardOptions
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain

from pipeline.corpus import build_corpus
from schemas.config import load_config
from tests import beam_memo
from tests.conftest import SAMPLE_CONFIG


class Stateful(beam.DoFn):
    BUFFER = userstate.BagStateSpec("buffer", beam.coders.StrUtf8Coder())
    FLUSH = userstate.TimerSpec("flush", TimeDomain.WATERMARK)

    def process(self, item, buffer=beam.DoFn.StateParam(BUFFER), flush=beam.DoFn.TimerParam(FLUSH)):
        buffer.add(item[1])

    @userstate.on_timer(FLUSH)
    def flushed(self, buffer=beam.DoFn.StateParam(BUFFER)):
        yield from buffer.read()


def dofns_of_the_sample_graph(tmp_path) -> list[beam.DoFn]:
    pipeline = beam.Pipeline()
    build_corpus(pipeline, load_config(SAMPLE_CONFIG), str(tmp_path))
    found = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.ParDo):
                found.append(node.transform.fn)

    pipeline.visit(Visitor())
    return found


def test_dofn_specs_are_beams_for_every_dofn_of_the_sample_graph_and_a_stateful_one(tmp_path):
    dofns = [*dofns_of_the_sample_graph(tmp_path), Stateful(), beam.Map(Stateful().process).fn]
    assert len(dofns) > 100
    for dofn in dofns:
        assert beam_memo.get_dofn_specs(dofn) == beam_memo.BEAMS_GET_DOFN_SPECS(dofn), dofn
    state, timers = beam_memo.get_dofn_specs(Stateful())
    assert [s.name for s in state] == ["buffer"] and len(timers) == 1


def test_views_hold_beams_values_share_them_within_one_options_and_not_across_two():
    flags = ["--direct_running_mode=in_memory", "--experiments=first", "--job_name=j"]
    for cls in [StandardOptions, DebugOptions, *PipelineOptions.__subclasses__()]:
        ours, beams = beam_memo.view_as(PipelineOptions(flags), cls), beam_memo.BEAMS_VIEW_AS(PipelineOptions(flags), cls)
        assert ours.get_all_options() == beams.get_all_options(), cls
    one, two = PipelineOptions(flags), PipelineOptions(flags)
    beam_memo.view_as(one, DebugOptions).add_experiment("second")
    beam_memo.view_as(one, StandardOptions).runner = "SomeRunner"
    assert beam_memo.view_as(one, DebugOptions).experiments == ["first", "second"]
    assert beam_memo.view_as(one, StandardOptions).runner == "SomeRunner"
    assert beam_memo.view_as(two, DebugOptions).experiments == ["first"]
    assert beam_memo.view_as(two, StandardOptions).runner is None


def test_signatures_are_beams_for_every_method_of_the_sample_graphs_dofns_and_other_callables(tmp_path):
    class Callable:
        def __call__(self, element, side=None):
            return element

    def plain(element, *args, extra=1):
        return element

    callables = [plain, functools.partial(plain, extra=2), Callable(), Callable, len, lambda x, y=3: x]
    for dofn in dofns_of_the_sample_graph(tmp_path):
        callables += [getattr(dofn, name) for name in ("process", "setup", "start_bundle", "finish_bundle", "teardown")]
        callables += [type(dofn).process]
    for fn in callables:
        assert beam_memo.get_signature(fn) == beam_memo.BEAMS_GET_SIGNATURE(fn), fn
        assert beam_memo.get_signature(fn) == beam_memo.BEAMS_GET_SIGNATURE(fn), fn  # the remembered answer
    # A bound method and its function differ by `self`, and each is remembered apart.
    assert "self" in beam_memo.get_signature(Callable.__call__).parameters
    assert "self" not in beam_memo.get_signature(Callable().__call__).parameters

    def short_lived(element):
        return element

    beam_memo.get_signature(short_lived)
    alive = weakref.ref(short_lived)
    del short_lived
    gc.collect()
    assert alive() is None  # the memo holds functions weakly: a test's lambdas and closures go


def test_beams_pickles_are_bz2s_own_bytes_whichever_way_and_however_often(tmp_path):
    assert cloudpickle_pickler.bz2.compress is beam_memo.compress  # installed for the test processes
    for dofn in dofns_of_the_sample_graph(tmp_path)[:40]:
        encoded = pickler.dumps(dofn)
        assert encoded == pickler.dumps(dofn)  # the remembered answer
        raw = bz2.decompress(base64.b64decode(encoded))
        assert base64.b64decode(encoded) == bz2.compress(raw, 9)  # what Beam's workers decompress
        for _ in range(2):  # decompressed, then remembered
            assert type(pickler.loads(encoded)) is type(dofn)
    for data in (b"", b"x" * (beam_memo.LARGEST_PICKLE + 1), bytearray(b"not hashable")):
        assert beam_memo.compress(data) == bz2.compress(data, 9)
        assert beam_memo.decompress(bz2.compress(data)) == bz2.decompress(bz2.compress(data))
