"""Run a function over a stream of items on a bounded pool, yielding results as they finish.

At most `concurrency` calls run at once and at most twice that many results wait to be consumed,
so memory stays bounded however long the input is. Items are drawn from the input only as slots
free up. If a call fails, or the consumer stops early, the calls not yet started are cancelled.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def bounded_map(
    function: Callable[[Item], Result], items: Iterable[Item], concurrency: int
) -> Iterator[Result]:
    if concurrency <= 1:
        for item in items:
            yield function(item)
        return
    # Each call, once finished, puts its future here: taking the next finished one costs the
    # same however many are pending (`concurrent.futures.wait` adds and removes a waiter on
    # every pending future, up to twice `concurrency` of them, for each result).
    finished: queue.SimpleQueue[Future[Result]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="neo") as pool:
        pending: set[Future[Result]] = set()
        try:
            for item in items:
                future = pool.submit(function, item)
                pending.add(future)
                future.add_done_callback(finished.put)
                if len(pending) >= 2 * concurrency:
                    done = finished.get()
                    pending.discard(done)
                    yield done.result()
            while pending:
                done = finished.get()
                pending.discard(done)
                yield done.result()
        finally:
            for future in pending:
                future.cancel()
