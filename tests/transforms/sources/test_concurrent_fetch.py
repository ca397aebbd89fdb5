"""run_concurrently: a token's fetches on a few threads, their records streamed back to Beam's thread."""

from __future__ import annotations

import threading
import time

import pytest

from transforms.sources.crawl.source import run_concurrently


def test_every_output_arrives_with_at_most_n_items_at_once():
    lock, running, most = threading.Lock(), [0], [0]

    def work(item):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        yield from (item, item * 10)
        with lock:
            running[0] -= 1

    out = list(run_concurrently(work, range(20), threads=3))
    assert sorted(out) == sorted([i for i in range(20)] + [i * 10 for i in range(20)])
    assert most[0] == 3


def test_a_large_output_streams_through_the_bounded_queue():
    made = []

    def work(item):
        for i in range(10_000):
            made.append(i)
            yield i

    seen = 0
    for _ in run_concurrently(work, [0], threads=2, backlog=8):
        seen += 1
        assert len(made) - seen <= 8 + 2  # never more than the backlog (and the one being put) ahead of the consumer
    assert seen == 10_000


def test_an_exception_of_the_work_is_raised_and_a_consumer_that_stops_leaves_no_thread_behind():
    def failing(item):
        yield item
        if item == 3:
            raise OSError("the crawl state cannot be written")

    with pytest.raises(OSError, match="cannot be written"):
        list(run_concurrently(failing, range(10), threads=2))

    before = threading.active_count()
    outputs = run_concurrently(lambda item: iter(range(1000)), range(10), threads=4, backlog=2)
    next(outputs)
    outputs.close()  # the consumer goes away: the threads stop at their next output
    assert threading.active_count() <= before
