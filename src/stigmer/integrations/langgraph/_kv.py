"""What the LangGraph checkpointer and store share: key-part encoding, payloads, and the flows that talk to
the server written once for both faces.

A flow is a generator that yields `Call`s (an SDK method name and its arguments) and is sent each answer
(or thrown the SDK's error); `run_sync` drives it with a `Client`, `run_async` with an `AsyncClient`. A
flow may also yield `Emit(item)` to hand a result to its caller as soon as it has it (`iter_sync` /
`iter_async`), so listing stays lazy. This is httpx's auth-flow shape: the logic exists once and only the
calls that wait are made twice.
"""

from __future__ import annotations

import base64
from typing import Any, AsyncIterator, Generator, Iterable, Iterator, NamedTuple
from urllib.parse import quote, unquote

import msgspec

from ...client import NotFoundError, Op, StigmerError

MAX_OPS = 100  # compares + ops per transaction and keys per batch read (the server's max_batch default)
MAX_TXN_BYTES = 3 * 1024 * 1024  # well inside the transaction body limit (4 x value limit + 64 KiB)
PAGE = 1000  # the server's largest list page


class Call(NamedTuple):
    method: str
    args: tuple = ()
    kwargs: dict = {}


class Emit(NamedTuple):
    item: Any


Flow = Generator[Any, Any, Any]


def part(text: str) -> str:
    """One key part, percent-encoded so it never holds `/`, `:` or U+0000 (only letters, digits, `-._~`
    and `%XX`): parts joined by `/` split back without ambiguity."""
    return quote(text, safe="")


def unpart(text: str) -> str:
    return unquote(text)


def descending(text: str) -> str:
    """A key part whose byte order is the reverse of `text`'s code-point order: each character becomes
    six hex digits of 0x10FFFF minus its code point, and `~` (above every hex digit) ends it, so a
    longer id sorts before its own prefix. Checkpoint ids then list newest first."""
    return "".join(f"{0x10FFFF - ord(c):06x}" for c in text) + "~"


def pack(typed: tuple[str, bytes]) -> dict[str, str]:
    """A serializer's (type, bytes) as JSON."""
    kind, data = typed
    return {"t": kind, "b": base64.b64encode(data).decode("ascii")}


def unpack(value: dict[str, str]) -> tuple[str, bytes]:
    return value["t"], base64.b64decode(value["b"])


# flows every caller needs


def entries(namespace: str, prefix: str, *, values: bool = True, emit: bool = False) -> Flow:
    """Every live entry under `prefix`, a page at a time; emitted one by one when `emit`, else returned."""
    out = []
    cursor = None
    while True:
        page = yield Call("list_page", (namespace,), {"prefix": prefix, "cursor": cursor, "limit": PAGE,
                                                     "values": values})
        for e in page.entries:
            if emit:
                yield Emit(e)
            else:
                out.append(e)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def batch_get(namespace: str, keys: list[str]) -> Flow:
    """The entries of `keys` (None where absent), in batches the server takes."""
    out = []
    for i in range(0, len(keys), MAX_OPS):
        out.extend((yield Call("batch_get", (namespace, keys[i:i + MAX_OPS]))))
    return out


def _op_size(op: Op) -> int:
    return len(msgspec.json.encode(op))


def chunks(ops: list[Op]) -> Iterator[list[Op]]:
    """Ops in transactions the server takes: at most MAX_OPS and MAX_TXN_BYTES each."""
    batch: list[Op] = []
    size = 0
    for op in ops:
        n = _op_size(op)
        if batch and (len(batch) == MAX_OPS or size + n > MAX_TXN_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(op)
        size += n
    if batch:
        yield batch


def write(ops: list[Op]) -> Flow:
    """Apply `ops` in as few transactions as the limits allow (one, so atomically, when they fit)."""
    for batch in chunks(ops):
        yield Call("txn", (), {"ops": batch})


def delete_keys(namespace: str, keys: Iterable[str]) -> Flow:
    """Delete the keys that still exist. A transaction's delete of an absent key fails it whole, so a batch
    that lost a key to another writer is re-read and retried with the keys still there."""
    keys = list(dict.fromkeys(keys))
    for i in range(0, len(keys), MAX_OPS):
        batch = keys[i:i + MAX_OPS]
        while batch:
            try:
                yield Call("txn", (), {"ops": [Op("delete", namespace, k) for k in batch]})
                break
            except NotFoundError:
                found = yield Call("batch_get", (namespace, batch))
                batch = [k for k, e in zip(batch, found) if e is not None]


# drivers


def run_sync(client: Any, flow: Flow) -> Any:
    return _last(iter_sync(client, flow))


def iter_sync(client: Any, flow: Flow) -> Iterator[Any]:
    """Drive `flow` with a blocking client, yielding what it emits; the flow's return value is yielded last
    wrapped in `_Done`."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(answer)
        except StopIteration as stop:
            yield _Done(stop.value)
            return
        answer, error = None, None
        if isinstance(step, Emit):
            yield step.item
            continue
        try:
            answer = getattr(client, step.method)(*step.args, **step.kwargs)
        except StigmerError as e:
            error = e


async def run_async(client: Any, flow: Flow) -> Any:
    result = None
    async for item in iter_async(client, flow):
        result = item
    return result.value if isinstance(result, _Done) else None


async def iter_async(client: Any, flow: Flow) -> AsyncIterator[Any]:
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(answer)
        except StopIteration as stop:
            yield _Done(stop.value)
            return
        answer, error = None, None
        if isinstance(step, Emit):
            yield step.item
            continue
        try:
            answer = await getattr(client, step.method)(*step.args, **step.kwargs)
        except StigmerError as e:
            error = e


class _Done(NamedTuple):
    value: Any


def _last(items: Iterator[Any]) -> Any:
    result = None
    for result in items:
        pass
    return result.value if isinstance(result, _Done) else None


def emitted_sync(client: Any, flow: Flow) -> Iterator[Any]:
    """What `flow` emits, driven with a blocking client."""
    for item in iter_sync(client, flow):
        if not isinstance(item, _Done):
            yield item


async def emitted_async(client: Any, flow: Flow) -> AsyncIterator[Any]:
    async for item in iter_async(client, flow):
        if not isinstance(item, _Done):
            yield item


__all__ = ["Call", "Emit", "Flow", "part", "unpart", "descending", "pack", "unpack", "entries", "batch_get",
           "write", "delete_keys", "run_sync", "run_async", "emitted_sync", "emitted_async"]
