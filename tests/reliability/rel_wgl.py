"""A linearizability checker for a key-value register with versions: Wing & Gong's search with Lowe's
memoisation (the algorithm Knossos and Porcupine use), one key at a time.

A history is a list of `Op`s with invocation and response times. An op whose outcome is unknown (a transport
error: it may or may not have taken effect) has `ret = inf` and `out = None`; the search may place it anywhere
after its invocation, or after everything else (which is the same as never).

The model, per key: state = (value, version); version 0 = absent. Outputs:
  get    -> ("ok", value, version) | ("absent",)
  put v  -> ("ok", version)
  cas (expected, v) -> ("ok", version) | ("conflict", current_version or None)
  incr a -> ("ok", value, version)
  delete -> ("ok", removed_version) | ("absent",)
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

INF = math.inf
State = tuple[Any, int]
INITIAL: State = (None, 0)


@dataclass
class Op:
    client: int
    key: str
    kind: str
    arg: Any
    call: float
    ret: float = INF
    out: tuple | None = None
    id: int = 0


def step(state: State, op: Op) -> State | None:
    """The state after `op` if its output is consistent with `state`, else None."""
    value, version = state
    out, kind = op.out, op.kind
    if kind == "get":
        if out is None:
            return state
        expect = ("absent",) if version == 0 else ("ok", value, version)
        return state if out == expect else None
    if kind == "put":
        new = (op.arg, version + 1)
        return new if out is None or out == ("ok", version + 1) else None
    if kind == "cas":
        expected, v = op.arg
        if version == expected:
            return (v, version + 1) if out is None or out == ("ok", version + 1) else None
        if out is None or (out[0] == "conflict" and out[1] in (None, version)):
            return state
        return None
    if kind == "incr":
        if version and not isinstance(value, (int, float)):
            return state if out in (None, ("type_mismatch",)) else None
        new = ((value if version else 0) + op.arg, version + 1)
        return new if out is None or out == ("ok", *new) else None
    if kind == "delete":
        if version == 0:
            return state if out is None or out == ("absent",) else None
        return INITIAL if out is None or out == ("ok", version) else None
    raise ValueError(kind)


class _Entry:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op: Op | None, is_call: bool):
        self.op, self.is_call, self.match, self.prev, self.next = op, is_call, None, None, None


def _entries(ops: list[Op]) -> _Entry:
    """The doubly linked list of call and return events in time order (calls first on ties: lenient)."""
    events = sorted([(op.call, 0, i) for i, op in enumerate(ops)] + [(op.ret, 1, i) for i, op in enumerate(ops)])
    head = prev = _Entry(None, False)
    calls: dict[int, _Entry] = {}
    for _, is_return, i in events:
        e = _Entry(ops[i], not is_return)
        if is_return:
            calls[i].match = e
        else:
            calls[i] = e
        prev.next, e.prev = e, prev
        prev = e
    return head


def _lift(e: _Entry) -> None:
    for x in (e, e.match):
        x.prev.next = x.next
        if x.next is not None:
            x.next.prev = x.prev


def _unlift(e: _Entry) -> None:
    for x in (e.match, e):
        x.prev.next = x
        if x.next is not None:
            x.next.prev = x


def check_key(ops: list[Op], initial: State = INITIAL, max_steps: int = 2_000_000) -> bool | None:
    """True if the history of one key is linearizable, False if not, None if the search ran out of steps."""
    ops = [Op(**{**op.__dict__, "id": i}) for i, op in enumerate(ops)]
    head = _entries(ops)
    state, linearized = initial, 0
    cache: set[tuple[int, State]] = set()
    stack: list[tuple[_Entry, State]] = []
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return None
        if entry.is_call:
            new = step(state, entry.op)
            if new is not None:
                bit = linearized | (1 << entry.op.id)
                if (bit, new) not in cache:
                    cache.add((bit, new))
                    stack.append((entry, state))
                    state, linearized = new, bit
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:  # a return whose call could not be linearized before it: undo the last choice
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op.id)
            _unlift(entry)
            entry = entry.next
    return True


def check(history: Iterable[Op]) -> dict[str, bool | None]:
    """Per-key partitioning: linearizability is local, so each key is checked on its own."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    return {key: check_key(ops) for key, ops in by_key.items()}
