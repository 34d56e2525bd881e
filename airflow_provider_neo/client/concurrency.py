"""Run a function over a stream of items on a bounded pool, yielding results as they finish.

At most `concurrency` calls run at once and at most twice that many results wait to be consumed,
so memory stays bounded however long the input is. Items are drawn from the input only as slots
free up. If a call fails, or the consumer stops early, the calls not yet started are cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="neo") as pool:
        pending: set[Future[Result]] = set()
        try:
            for item in items:
                pending.add(pool.submit(function, item))
                if len(pending) >= 2 * concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()
