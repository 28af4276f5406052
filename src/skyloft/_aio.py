"""Blocking methods with `.aio` async twins, as in Modal (`f.remote.aio(...)`).

The blocking implementation is the only one; the twin runs it in a worker
thread so the event loop stays free. Generator methods get an async-generator
twin that pulls items in batches from a thread.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_DONE = object()


def _next_batch(iterator: Iterator[Any], size: int) -> list[Any]:
    batch = []
    for item in iterator:
        batch.append(item)
        if len(batch) >= size:
            break
    else:
        batch.append(_DONE)
    return batch


async def iterate_in_thread(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Drive a blocking iterator from async code without blocking the loop."""
    import asyncio

    while True:
        batch = await asyncio.to_thread(_next_batch, iterator, 64)
        for item in batch:
            if item is _DONE:
                return
            yield item


class _Bound:
    __slots__ = ("_fn", "_obj", "_gen")

    def __init__(self, fn: Callable[..., Any], obj: Any, gen: bool) -> None:
        self._fn, self._obj, self._gen = fn, obj, gen

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(self._obj, *args, **kwargs)

    def aio(self, *args: Any, **kwargs: Any) -> Any:
        import asyncio

        if self._gen:
            return iterate_in_thread(iter(self._fn(self._obj, *args, **kwargs)))
        return asyncio.to_thread(self._fn, self._obj, *args, **kwargs)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self._fn.__doc__


class twin(Generic[T]):
    """Method decorator: `obj.method(...)` blocks, `await obj.method.aio(...)` does not."""

    def __init__(self, fn: Callable[..., T], gen: bool = False) -> None:
        self._fn = fn
        self._gen = gen
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return _Bound(self._fn, obj, self._gen)


def twin_gen(fn: Callable[..., Any]) -> twin[Any]:
    """Like `twin` for generator methods: `.aio` returns an async iterator."""
    return twin(fn, gen=True)


def with_aio(fn: Callable[..., T]) -> Callable[..., T]:
    """Give a plain function an `.aio` attribute running it in a thread."""

    async def aio(*args: Any, **kwargs: Any) -> T:
        import asyncio

        return await asyncio.to_thread(fn, *args, **kwargs)

    fn.aio = aio  # type: ignore[attr-defined]
    return fn
