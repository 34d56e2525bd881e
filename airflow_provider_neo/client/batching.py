"""Customer ids: validated one by one as they stream in, and packed into paIds batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_neo.endpoints import PositiveInt


def customer_id_stream(customer_ids: Any, argument: str = "customer_ids") -> Iterator[int]:
    """One id, or any iterable of ids, as positive ints, lazily: nothing is copied into a list.

    A list, tuple or range is checked whole before the first id is yielded, so a bad id in it
    fails before any request; an id from a generator fails when it is reached.
    """
    kind = PositiveInt()

    def check(value: Any) -> int:
        try:
            return kind.coerce(value)
        except ValueError as exc:
            raise ValueError(f"{argument}: {exc}") from None

    if isinstance(customer_ids, (int, str)):
        return iter([check(customer_ids)])
    if isinstance(customer_ids, (bytes, dict)) or not isinstance(customer_ids, Iterable):
        raise ValueError(f"{argument}: expected an id or an iterable of ids, got {customer_ids!r}")
    if isinstance(customer_ids, range):
        if customer_ids:  # every id lies between the two ends
            check(min(customer_ids[0], customer_ids[-1]))
    elif isinstance(customer_ids, (list, tuple)):
        for value in customer_ids:
            check(value)
    return (check(value) for value in customer_ids)


def id_batches(ids: Iterable[int], *, max_ids: int, max_chars: int) -> Iterator[list[int]]:
    """Consecutive batches of at most `max_ids` ids whose comma-joined text fits `max_chars`."""
    batch: list[int] = []
    length = 0
    for id_ in ids:
        cost = len(str(id_)) + (1 if batch else 0)
        if batch and (len(batch) >= max_ids or length + cost > max_chars):
            yield batch
            batch, length, cost = [], 0, len(str(id_))
        batch.append(id_)
        length += cost
    if batch:
        yield batch
