"""A LangGraph checkpointer kept in Stigmer keys (`pip install 'stigmer[langgraph]'`).

    from langgraph.graph import StateGraph
    from stigmer.client import Client
    from stigmer.integrations.langgraph import StigmerSaver

    with Client("http://127.0.0.1:7474") as client:
        graph = builder.compile(checkpointer=StigmerSaver(client))

One class with both faces, as LangGraph's InMemorySaver: the sync methods use `client` (a `Client`), the
async ones `async_client` (an `AsyncClient`), or `client` in a worker thread when only that is given. The
saver talks to the server only through the SDK. Key layout, in one Stigmer namespace (default `langgraph`),
with T, N the percent-encoded thread id and checkpoint namespace and D the checkpoint id encoded so that
key order is newest first (`_kv.descending`):

    c/T/N/D                       the checkpoint (without channel values), its metadata, its parent id
    b/T/N/<channel>/<version>     one channel value at one version (shared by every checkpoint that has it)
    w/T/N/<id>/<task>/<idx>       a pending write of a task against checkpoint <id>
    r/<run>/T/N/D                 index: the checkpoints written by run <run> (for delete_for_runs)
    p/<key>/<i>                   part i of a value too large for one key (PART characters of its base64)

Every serialized value is the serializer's (type, bytes) as `{"t", "b": base64}`. docs/integrations.md
has the guarantees and what scales how.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, AsyncIterator, Iterator, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP, BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple,
    get_checkpoint_id, get_checkpoint_metadata, writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ...client import AsyncClient, Client, Op, VersionConflictError
from . import _kv
from ._kv import Call, Emit, Flow, part

NAMESPACE = "langgraph"
PART = 512 * 1024  # base64 characters per key: a value larger than this is kept in parts (p/<key>/<i>)
NO_CLIENT = "this StigmerSaver has only an AsyncClient: use the async methods (aget_tuple, alist, aput, …)"


def _thread(thread_id: Any) -> str:
    return part(str(thread_id))


def checkpoint_key(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"c/{_thread(thread_id)}/{part(ns)}/{_kv.descending(checkpoint_id)}"


def blob_key(thread_id: str, ns: str, channel: str, version: Any) -> str:
    return f"b/{_thread(thread_id)}/{part(ns)}/{part(channel)}/{part(str(version))}"


def writes_prefix(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"w/{_thread(thread_id)}/{part(ns)}/{part(checkpoint_id)}/"


def run_key(run_id: str, thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"r/{part(str(run_id))}/{_thread(thread_id)}/{part(ns)}/{_kv.descending(checkpoint_id)}"


FAMILIES = ("w", "b", "p/w", "p/b")  # a thread's keys besides its checkpoints (c/) and run index (r/)


def part_key(key: str, i: int) -> str:
    return f"p/{key}/{i:06d}"


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def _matches(metadata: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """LangGraph's metadata filter: every member equal (as InMemorySaver and the SQL savers compare)."""
    return not filter or all(metadata.get(k) == v for k, v in filter.items())


class StigmerSaver(BaseCheckpointSaver[str]):
    """A checkpointer over a Stigmer server. `client` / `async_client` are SDK clients the caller owns."""

    def __init__(self, client: Client | None = None, *, async_client: AsyncClient | None = None,
                 namespace: str = NAMESPACE, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        if client is None and async_client is None:
            raise TypeError("StigmerSaver needs a Client (client=) or an AsyncClient (async_client=)")
        if isinstance(client, AsyncClient):
            client, async_client = None, client
        self.client = client
        self.async_client = async_client
        self.namespace = namespace

    # drivers

    def _sync(self, flow: Flow) -> Any:
        if self.client is None:
            raise TypeError(NO_CLIENT)
        return _kv.run_sync(self.client, flow)

    async def _async(self, flow: Flow, sync_method: str, *args: Any, **kwargs: Any) -> Any:
        if self.async_client is not None:
            return await _kv.run_async(self.async_client, flow)
        flow.close()
        return await asyncio.to_thread(getattr(self, sync_method), *args, **kwargs)

    # decoding

    def _loads(self, value: dict[str, str]) -> Any:
        return self.serde.loads_typed(_kv.unpack(value))

    def _dumps(self, value: Any) -> dict[str, str]:
        return _kv.pack(self.serde.dumps_typed(value))

    def _dumps_at(self, key: str, value: Any) -> tuple[dict[str, Any], list[Op]]:
        """A value to store at `key`, and the ops writing its parts when it is too large for one key: its
        base64 is cut into PART-sized pieces at `p/<key>/<i>` and the value itself names how many."""
        packed = self._dumps(value)
        data = packed["b"]
        if len(data) <= PART:
            return packed, []
        pieces = [data[i:i + PART] for i in range(0, len(data), PART)]
        ops = [Op("put", self.namespace, part_key(key, i), value=piece) for i, piece in enumerate(pieces)]
        return {"t": packed["t"], "parts": len(pieces)}, ops

    def _loads_at(self, key: str, value: dict[str, Any]) -> Flow:
        if "parts" not in value:
            return self._loads(value)
        pieces = yield from _kv.batch_get(self.namespace, [part_key(key, i) for i in range(value["parts"])])
        if any(p is None for p in pieces):
            raise RuntimeError(f"a part of {key!r} is missing")
        return self._loads({"t": value["t"], "b": "".join(p.value for p in pieces)})

    def _tuple(self, stored: dict[str, Any]) -> Flow:
        """The CheckpointTuple of a stored checkpoint: its channel values and pending writes read with it."""
        thread_id, ns, checkpoint_id = stored["thread_id"], stored["checkpoint_ns"], stored["checkpoint_id"]
        checkpoint: Checkpoint = self._loads(stored["checkpoint"])
        versions = checkpoint.get("channel_versions") or {}
        channels = list(versions)
        blobs = yield from _kv.batch_get(self.namespace, [blob_key(thread_id, ns, c, versions[c]) for c in channels])
        values = {}
        for c, e in zip(channels, blobs):
            if e is not None and not e.value.get("empty"):
                values[c] = yield from self._loads_at(e.key, e.value)
        found = yield from _kv.entries(self.namespace, writes_prefix(thread_id, ns, checkpoint_id))
        found.sort(key=lambda e: writes_sort_key(e.value["task_path"], e.value["task_id"], e.value["idx"]))
        writes = []
        for e in found:
            w = e.value
            writes.append((w["task_id"], w["channel"], (yield from self._loads_at(e.key, w["value"]))))
        parent = stored.get("parent_id")
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self._loads(stored["metadata"]),
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=writes)

    # flows

    def _get_tuple(self, config: RunnableConfig) -> Flow:
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            [entry] = yield from _kv.batch_get(self.namespace, [checkpoint_key(thread_id, ns, checkpoint_id)])
        else:  # the newest: the first key of the thread's namespace
            page = yield Call("list_page", (self.namespace,),
                              {"prefix": f"c/{_thread(thread_id)}/{part(ns)}/", "limit": 1})
            entry = page.entries[0] if page.entries else None
        if entry is None:
            return None
        return (yield from self._tuple(entry.value))

    def _list(self, config: RunnableConfig | None, filter: dict[str, Any] | None, before: RunnableConfig | None,
              limit: int | None) -> Flow:
        conf = (config or {}).get("configurable") or {}
        prefix = "c/"
        if conf.get("thread_id") is not None:
            prefix += _thread(conf["thread_id"]) + "/"
            if conf.get("checkpoint_ns") is not None:
                prefix += part(conf["checkpoint_ns"]) + "/"
        only_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        if limit is not None and limit <= 0:
            return
        if only_id and prefix.count("/") == 3:  # one checkpoint named: read it, not the thread
            [entry] = yield from _kv.batch_get(self.namespace, [prefix + _kv.descending(only_id)])
            if (entry is not None and not (before_id and only_id >= before_id)
                    and _matches(self._loads(entry.value["metadata"]), filter)):
                yield Emit((yield from self._tuple(entry.value)))
            return
        left = limit
        cursor = None
        # Within one thread and namespace, `before` is where the listing starts (keys are newest first).
        start = (checkpoint_key(str(conf["thread_id"]), conf["checkpoint_ns"], before_id)
                 if before_id and prefix.count("/") == 3 else None)
        while True:
            page = yield Call("list_page", (self.namespace,), {"prefix": prefix, "cursor": cursor, "limit": 100,
                                                              "start_after": None if cursor else start})
            for e in page.entries:
                stored = e.value
                cid = stored["checkpoint_id"]
                if (only_id and cid != only_id) or (before_id and cid >= before_id):
                    continue
                if not _matches(self._loads(stored["metadata"]), filter):
                    continue
                yield Emit((yield from self._tuple(stored)))
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
             new_versions: ChannelVersions) -> Flow:
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        stored_checkpoint = checkpoint.copy()
        values = stored_checkpoint.pop("channel_values", {})  # type: ignore[misc]
        parts: list[Op] = []
        blobs: list[Op] = []
        for c, v in new_versions.items():
            key = blob_key(thread_id, ns, c, v)
            value, extra = self._dumps_at(key, values[c]) if c in values else ({"empty": True}, [])
            parts.extend(extra)
            blobs.append(Op("put", self.namespace, key, value=value))
        ops = parts + blobs  # parts, then the values naming them, then the checkpoint
        meta = get_checkpoint_metadata(config, metadata)
        stored = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"],
                  "parent_id": conf.get("checkpoint_id"), "checkpoint": self._dumps(stored_checkpoint),
                  "metadata": self._dumps(meta)}
        # The checkpoint goes last: when the blobs need more than one transaction, a reader never finds a
        # checkpoint whose values are not there yet.
        ops.append(Op("put", self.namespace, checkpoint_key(thread_id, ns, checkpoint["id"]), value=stored))
        run_id = meta.get("run_id")
        if run_id is not None:
            ops.append(Op("put", self.namespace, run_key(str(run_id), thread_id, ns, checkpoint["id"]),
                          value={"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}))
        yield from _kv.write(ops)
        return _config(thread_id, ns, checkpoint["id"])

    def _put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                    task_path: str) -> Flow:
        conf = config["configurable"]
        thread_id, ns, checkpoint_id = str(conf["thread_id"]), conf.get("checkpoint_ns", ""), conf["checkpoint_id"]
        prefix = writes_prefix(thread_id, ns, checkpoint_id) + part(task_id) + "/"
        rows = []
        parts: list[Op] = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            key = prefix + str(idx)
            packed, extra = self._dumps_at(key, value)
            parts.extend(extra)
            rows.append((key, idx, {"task_id": task_id, "task_path": task_path, "idx": idx, "channel": channel,
                                    "value": packed}))
        for _ in range(5):
            # A regular write (idx >= 0) is kept once: a repeat is skipped and a racing writer's copy wins
            # (the create-only guard); a special one (error, interrupt, …) replaces what was there.
            present = yield from _kv.batch_get(self.namespace, [key for key, idx, _ in rows if idx >= 0])
            exists = {e.key for e in present if e is not None}
            ops = [op for op in parts if op.key.rsplit("/", 1)[0][2:] not in exists]
            ops += [Op("put", self.namespace, key, value=row, version=0 if idx >= 0 else None)
                    for key, idx, row in rows if key not in exists]
            try:
                yield from _kv.write(ops)
                return
            except VersionConflictError:
                continue
        raise RuntimeError("put_writes: the writes kept changing under concurrent writers")

    def _delete_checkpoints(self, stored: list[dict[str, Any]]) -> Flow:
        """Delete checkpoints with their run index entries, then their pending writes."""
        keys = []
        for s in stored:
            keys.append(checkpoint_key(s["thread_id"], s["checkpoint_ns"], s["checkpoint_id"]))
            run_id = self._loads(s["metadata"]).get("run_id")
            if run_id is not None:
                keys.append(run_key(str(run_id), s["thread_id"], s["checkpoint_ns"], s["checkpoint_id"]))
        yield from _kv.delete_keys(self.namespace, keys)
        write_keys = []
        for s in stored:
            found = yield from _kv.entries(self.namespace,
                                           writes_prefix(s["thread_id"], s["checkpoint_ns"], s["checkpoint_id"]),
                                           values=False)
            write_keys.extend(e.key for e in found)
            parts = yield from _kv.entries(
                self.namespace, "p/" + writes_prefix(s["thread_id"], s["checkpoint_ns"], s["checkpoint_id"]),
                values=False)
            write_keys.extend(e.key for e in parts)
        yield from _kv.delete_keys(self.namespace, write_keys)

    def _thread_checkpoints(self, thread_id: str) -> Flow:
        found = yield from _kv.entries(self.namespace, f"c/{_thread(thread_id)}/")
        return [e.value for e in found]

    def _delete_thread(self, thread_id: str) -> Flow:
        thread_id = str(thread_id)
        stored = yield from self._thread_checkpoints(thread_id)
        yield from self._delete_checkpoints(stored)
        for family in FAMILIES:  # what is left: writes of checkpoints never stored, every blob, their parts
            found = yield from _kv.entries(self.namespace, f"{family}/{_thread(thread_id)}/", values=False)
            yield from _kv.delete_keys(self.namespace, [e.key for e in found])

    def _delete_for_runs(self, run_ids: Sequence[str]) -> Flow:
        for run_id in run_ids:
            index = yield from _kv.entries(self.namespace, f"r/{part(str(run_id))}/")
            refs = [e.value for e in index]
            found = yield from _kv.batch_get(self.namespace, [
                checkpoint_key(r["thread_id"], r["checkpoint_ns"], r["checkpoint_id"]) for r in refs])
            # Only checkpoints still of that run (one rewritten by another run keeps its new index entry).
            stored = [e.value for e in found
                      if e is not None and self._loads(e.value["metadata"]).get("run_id") == run_id]
            yield from self._delete_checkpoints(stored)
            yield from _kv.delete_keys(self.namespace, [e.key for e in index])

    def _copy_thread(self, source_thread_id: str, target_thread_id: str) -> Flow:
        source, target = str(source_thread_id), str(target_thread_id)
        src, dst = _thread(source), _thread(target)
        ops = []
        for family in reversed(FAMILIES):  # parts, values and writes first, the checkpoints needing them last
            found = yield from _kv.entries(self.namespace, f"{family}/{src}/")
            for e in found:
                ops.append(Op("put", self.namespace, f"{family}/{dst}/" + e.key[len(f"{family}/{src}/"):],
                              value=e.value))
        stored = yield from self._thread_checkpoints(source)
        for s in stored:
            copy = {**s, "thread_id": target}
            ops.append(Op("put", self.namespace, checkpoint_key(target, s["checkpoint_ns"], s["checkpoint_id"]),
                          value=copy))
            run_id = self._loads(s["metadata"]).get("run_id")
            if run_id is not None:
                ops.append(Op("put", self.namespace, run_key(str(run_id), target, s["checkpoint_ns"],
                                                             s["checkpoint_id"]),
                              value={"thread_id": target, "checkpoint_ns": s["checkpoint_ns"],
                                     "checkpoint_id": s["checkpoint_id"]}))
        yield from _kv.write(ops)

    def _prune(self, thread_ids: Sequence[str], strategy: str) -> Flow:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            thread_id = str(thread_id)
            if strategy == "delete":
                yield from self._delete_thread(thread_id)
                continue
            stored = yield from self._thread_checkpoints(thread_id)
            latest: dict[str, dict[str, Any]] = {}
            for s in stored:  # newest first within each checkpoint namespace
                latest.setdefault(s["checkpoint_ns"], s)
            kept = {id(s) for s in latest.values()}
            yield from self._delete_checkpoints([s for s in stored if id(s) not in kept])
            keep_blobs = set()
            for ns, s in latest.items():
                versions = self._loads(s["checkpoint"]).get("channel_versions") or {}
                keep_blobs.update(blob_key(thread_id, ns, c, v) for c, v in versions.items())
            blobs = yield from _kv.entries(self.namespace, f"b/{_thread(thread_id)}/", values=False)
            parts = yield from _kv.entries(self.namespace, f"p/b/{_thread(thread_id)}/", values=False)
            yield from _kv.delete_keys(self.namespace, [e.key for e in blobs if e.key not in keep_blobs] +
                                       [e.key for e in parts if e.key[2:].rsplit("/", 1)[0] not in keep_blobs])

    # the sync face

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self._get_tuple(config))

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        if self.client is None:
            raise TypeError(NO_CLIENT)
        yield from _kv.emitted_sync(self.client, self._list(config, filter, before, limit))

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        return self._sync(self._put(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        self._sync(self._put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self._delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self._delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self._copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self._prune(thread_ids, strategy))

    # the async face

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._async(self._get_tuple(config), "get_tuple", config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        if self.async_client is not None:
            async for item in _kv.emitted_async(self.async_client, self._list(config, filter, before, limit)):
                yield item
            return
        found = await asyncio.to_thread(lambda: [*self.list(config, filter=filter, before=before, limit=limit)])
        for item in found:
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await self._async(self._put(config, checkpoint, metadata, new_versions), "put", config, checkpoint,
                                 metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await self._async(self._put_writes(config, writes, task_id, task_path), "put_writes", config, writes,
                          task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._async(self._delete_thread(thread_id), "delete_thread", thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._async(self._delete_for_runs(run_ids), "delete_for_runs", run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._async(self._copy_thread(source_thread_id, target_thread_id), "copy_thread", source_thread_id,
                          target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._async(self._prune(thread_ids, strategy), "prune", thread_ids, strategy=strategy)

    def get_next_version(self, current: str | int | None, channel: None = None) -> str:
        """Versions as LangGraph's SQL savers make them: a zero-padded counter, then a random fraction."""
        n = 0 if current is None else current if isinstance(current, int) else int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.random():016}"
