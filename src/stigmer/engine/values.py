"""Pure functions on JSON values: encoding, limits and the read-modify-write operations.

Objects are Python dicts, so member order is kept; integers stay Python ints. `MISSING` stands for
"no current value" (absent, deleted or expired).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import jsonpatch
import jsonpointer
import msgspec

from .errors import InvalidArgument, PatchFailed, TypeMismatch, ValueTooLarge

MISSING: Any = msgspec.UNSET
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII unescaped); the size limits are measured on this."""
    return _encoder.encode(value)


def decode(data: bytes | str) -> Any:
    """Parse JSON; raises InvalidArgument for malformed or too deeply nested input."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidArgument(f"invalid JSON: {exc}" if not isinstance(exc, RecursionError) else "value nested too deeply") from None


def depth(value: Any) -> int:
    """A scalar has depth 0; `[]`, `{}` and `[1]` have depth 1."""
    best = 0
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            best = max(best, d)
            continue
        best = max(best, d + 1)
        stack.extend((child, d + 1) for child in v)
    return best


def check_value(value: Any, max_bytes: int, max_depth: int) -> bytes:
    if depth(value) > max_depth:
        raise InvalidArgument("value nested too deeply", max_depth=max_depth)
    data = encode(value)
    if len(data) > max_bytes:
        raise ValueTooLarge(max_bytes, len(data))
    return data


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def add_numbers(a: int | float, b: int | float) -> int | float:
    """int + int stays an int while the exact sum fits in signed 64 bits; otherwise an IEEE double."""
    if isinstance(a, int) and isinstance(b, int):
        total = a + b
        if INT64_MIN <= total <= INT64_MAX:
            return total
    total = float(a) + float(b)
    if not math.isfinite(total):
        raise InvalidArgument("incr result is not a finite number")
    return total


def incr(current: Any, amount: int | float, path: list[str] | None) -> Any:
    """Add `amount` to the value, or to the member at `path` (object members; missing ones start at 0)."""
    if not path:
        if current is MISSING:
            current = 0
        if not is_number(current):
            raise TypeMismatch("incr", "value_is_not_a_number")
        return add_numbers(current, amount)
    if current is MISSING:
        current = {}
    if not isinstance(current, dict):
        raise TypeMismatch("incr", "value_is_not_an_object")
    result = dict(current)
    node = result
    for name in path[:-1]:
        child = node.get(name, MISSING)
        if child is MISSING:
            child = {}
        elif not isinstance(child, dict):
            raise TypeMismatch("incr", "value_is_not_an_object")
        node[name] = child = dict(child)
        node = child
    old = node.get(path[-1], 0)
    if not is_number(old):
        raise TypeMismatch("incr", "field_is_not_a_number")
    node[path[-1]] = add_numbers(old, amount)
    return result


def _merge_into(target: dict, patch: dict, deep: bool, null_deletes: bool) -> dict:
    result = dict(target)
    for k, v in patch.items():
        if v is None and null_deletes:
            result.pop(k, None)
        elif deep and isinstance(v, dict):
            old = result.get(k)
            result[k] = _merge_into(old if isinstance(old, dict) else {}, v, deep, null_deletes) if (
                isinstance(old, dict) or null_deletes) else v
        else:
            result[k] = v
    return result


def merge(current: Any, patch: dict, *, deep: bool = False, null_deletes: bool = False) -> Any:
    """Shallow or deep object merge. With `null_deletes` (RFC 7386) a null member removes the key;
    without it nulls are stored. Existing members keep their position; new ones go last."""
    if not isinstance(patch, dict):
        raise InvalidArgument("merge value must be an object")
    if current is MISSING:
        if not null_deletes:
            return patch
        current = {}
    if not isinstance(current, dict):
        raise TypeMismatch("merge", "value_is_not_an_object")
    return _merge_into(current, patch, deep, null_deletes)


def append(current: Any, item: Any, max_items: int | None) -> list:
    """Append one item; with `max_items`, keep only the last N (a longer list is trimmed too)."""
    if current is MISSING:
        current = []
    if not isinstance(current, list):
        raise TypeMismatch("append", "value_is_not_a_list")
    result = [*current, item]
    if max_items is not None and len(result) > max_items:
        result = result[-max_items:]
    return result


def json_patch(current: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON Patch to a copy of the value."""
    if not isinstance(ops, list):
        raise InvalidArgument("a JSON Patch must be an array of operations")
    try:
        patch = jsonpatch.JsonPatch(ops)
        return patch.apply(copy.deepcopy(current), in_place=True)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchFailed(f"test failed: {exc}") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
        raise PatchFailed(f"patch does not apply: {exc}") from None
    except (jsonpatch.InvalidJsonPatch, TypeError, ValueError, KeyError, IndexError) as exc:
        raise InvalidArgument(f"invalid JSON Patch: {exc}") from None
