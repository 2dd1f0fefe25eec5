"""Pure functions on JSON values: encoding, limits, equality and the read-modify-write operations.

Objects are Python dicts, so member order is kept; integers stay Python ints. `MISSING` stands for
"no current value" (absent, deleted or expired).
"""

from __future__ import annotations

import math
import re
from typing import Any

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


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def json_depth(data: bytes, limit: int = 1 << 30) -> int:
    """Nesting depth of compact JSON, counted on its bytes: a tree walk in Python costs ~100 ms per MB,
    this a few. Counting stops once past `limit`."""
    # Drop escaped backslashes, then escaped quotes, then every string; keep only brackets, of one kind.
    s = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    s = b"".join(s.split(b'"')[::2]).translate(_ONE_KIND, _NOT_BRACKETS)
    d = 0
    while s and d <= limit:
        s = s.replace(b"[]", b"")  # exactly the innermost level: replace() does not rescan what it joins
        d += 1
    return d


def depth(value: Any) -> int:
    """A scalar has depth 0; `[]`, `{}` and `[1]` have depth 1."""
    return json_depth(encode(value)) if isinstance(value, (dict, list)) else 0


def check_value(value: Any, max_bytes: int, max_depth: int) -> bytes:
    try:
        data = encode(value)
    except RecursionError:
        raise InvalidArgument("value nested too deeply", max_depth=max_depth) from None
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidArgument(f"not a JSON value: {exc}") from None
    if json_depth(data, max_depth) > max_depth:
        raise InvalidArgument("value nested too deeply", max_depth=max_depth)
    if len(data) > max_bytes:
        raise ValueTooLarge(max_bytes, len(data))
    return data


def json_equal(a: Any, b: Any) -> bool:
    """Equality in the JSON data model: a boolean never equals a number, 1 equals 1.0, objects compare
    member-wise whatever their member order, arrays element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b  # Python compares int with float exactly
    if isinstance(a, dict):
        return isinstance(b, dict) and len(a) == len(b) and all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    return type(a) is type(b) and a == b


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def add_numbers(a: int | float, b: int | float) -> int | float:
    """int + int stays an int while the exact sum fits in signed 64 bits; otherwise an IEEE double."""
    if isinstance(a, int) and isinstance(b, int):
        total = a + b
        if INT64_MIN <= total <= INT64_MAX:
            return total
    try:  # float() of an int beyond double range raises instead of giving infinity
        total = float(a + b) if isinstance(a, int) and isinstance(b, int) else float(a) + float(b)
    except OverflowError:
        total = math.inf
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


# JSON Patch (RFC 6902) over RFC 6901 pointers, bounded while it runs: at most MAX_PATCH_OPS operations,
# no intermediate document over the value's size or depth limit, and at most PATCH_WORK_FACTOR times the
# size limit in bytes copied, moved, removed, replaced or tested in all (array elements shifted by an
# insert or removal count SHIFTS_PER_BYTE to a byte), so a patch costs about what decoding the value does.
MAX_PATCH_OPS = 1000
PATCH_WORK_FACTOR = 4
SHIFTS_PER_BYTE = 8  # moving a list pointer is ~8x cheaper than encoding a byte (measured)
PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")


class PatchStep(msgspec.Struct, frozen=True):
    index: int
    op: str
    path: str
    tokens: list[str]
    source: list[str] | None = None  # move, copy
    source_path: str = ""
    value: Any = MISSING  # add, replace, test
    data: bytes = b""  # the value encoded


def _pointer(raw: Any, i: int, name: str) -> list[str]:
    if not isinstance(raw, str):
        raise InvalidArgument(f"patch op {i}: {name} must be a string", index=i)
    if raw == "":
        return []
    if raw[0] != "/":
        raise InvalidArgument(f"patch op {i}: {name} must be empty or start with '/'", index=i)
    tokens = raw[1:].split("/")
    for t in tokens:
        if "~" in t and re.search(r"~(?![01])", t):
            raise InvalidArgument(f"patch op {i}: {name} has an invalid '~' escape", index=i)
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def parse_patch(ops: Any, max_ops: int = MAX_PATCH_OPS) -> list[PatchStep]:
    """Check a patch document's shape; unknown members of an operation are ignored (RFC 6902 §4)."""
    if isinstance(ops, list) and all(isinstance(s, PatchStep) for s in ops):
        return ops  # already parsed
    if not isinstance(ops, list):
        raise InvalidArgument("a JSON Patch must be an array of operations")
    if len(ops) > max_ops:
        raise InvalidArgument(f"a JSON Patch holds at most {max_ops} operations", limit=max_ops)
    steps = []
    for i, raw in enumerate(ops):
        if not isinstance(raw, dict):
            raise InvalidArgument(f"patch op {i} must be an object", index=i)
        op = raw.get("op")
        if op not in PATCH_OPS:
            raise InvalidArgument(f"patch op {i}: op must be one of {', '.join(PATCH_OPS)}", index=i)
        tokens = _pointer(raw.get("path"), i, "path")
        source, value, data = None, MISSING, b""
        if op in ("move", "copy"):
            source = _pointer(raw.get("from"), i, "from")
            if op == "move" and len(source) < len(tokens) and tokens[:len(source)] == source:
                raise InvalidArgument(f"patch op {i}: cannot move a value into itself", index=i)
        elif op != "remove":
            if "value" not in raw:
                raise InvalidArgument(f"patch op {i}: {op} needs a value", index=i)
            value = raw["value"]
            try:
                data = encode(value)
            except (TypeError, RecursionError, msgspec.EncodeError):
                raise InvalidArgument(f"patch op {i}: value is not JSON", index=i) from None
        steps.append(PatchStep(i, op, raw["path"], tokens, source, raw.get("from", ""), value, data))
    return steps


class _Patcher:
    """Applies steps to a private copy, tracking its exact encoded size and its greatest depth."""

    def __init__(self, data: bytes, max_bytes: int, max_depth: int):
        self.holder = [decode(data)]  # the root is holder[0], so it is located like any member
        self.size = len(data)
        self.depth = json_depth(data)
        self.max_bytes, self.max_depth = max_bytes, max_depth
        self.work, self.max_work = 0, PATCH_WORK_FACTOR * max_bytes

    def _charge(self, n: int) -> None:
        self.work += n
        if self.work > self.max_work:
            raise InvalidArgument(f"JSON Patch too costly: it may move, copy, remove, replace or test at most "
                                  f"{self.max_work} bytes in all", limit=self.max_work)

    def _measure(self, value: Any) -> bytes:
        data = encode(value)
        self._charge(len(data))
        return data

    def _locate(self, step: PatchStep, tokens: list[str], adding: bool) -> tuple[Any, Any]:
        """(parent, key) of the location; for `adding`, the last key may be new (or "-" in an array)."""
        parent, key = self.holder, 0
        for n, t in enumerate(tokens):
            node = parent[key]
            new_ok = adding and n == len(tokens) - 1
            if isinstance(node, dict) and (t in node or new_ok):
                parent, key = node, t
            elif isinstance(node, list) and (t == "-" and new_ok or _INDEX.fullmatch(t)) and (
                    (idx := len(node) if t == "-" else int(t)) < len(node) or new_ok and idx == len(node)):
                parent, key = node, idx
            else:
                where = f"path {step.path}" if tokens is step.tokens else f"from {step.source_path}"
                raise PatchFailed(f"patch op {step.index} ({step.op}): {where[:200]} does not exist",
                                  index=step.index)
        return parent, key

    def _grow(self, delta: int) -> None:
        self.size += delta
        if self.size > self.max_bytes:
            raise ValueTooLarge(self.max_bytes, self.size)

    def _insert(self, parent: Any, key: Any, value: Any, data: bytes, at_depth: int) -> None:
        vdepth = json_depth(data, self.max_depth) if isinstance(value, (dict, list)) else 0
        self.depth = max(self.depth, at_depth + vdepth)
        if self.depth > self.max_depth:
            raise InvalidArgument("value nested too deeply", max_depth=self.max_depth)
        if parent is self.holder:
            self._grow(len(data) - self.size)
        elif isinstance(parent, dict):
            old = len(self._measure(parent[key])) if key in parent else None
            self._grow(len(data) - old if old is not None else (1 if parent else 0) + len(encode(key)) + 1 + len(data))
        else:
            self._grow((1 if parent else 0) + len(data))
        if isinstance(value, (dict, list)):
            value = decode(data)  # a copy, so no two places share one object
        if isinstance(parent, list) and parent is not self.holder:
            self._charge((len(parent) - key) // SHIFTS_PER_BYTE)
            parent.insert(key, value)
        else:
            parent[key] = value

    def _remove(self, step: PatchStep, parent: Any, key: Any) -> tuple[Any, bytes]:
        if parent is self.holder:
            raise PatchFailed(f"patch op {step.index} ({step.op}): cannot remove the whole value", index=step.index)
        value = parent[key]
        data = self._measure(value)
        sep = 1 if len(parent) > 1 else 0
        self.size -= sep + (len(encode(key)) + 1 if isinstance(parent, dict) else 0) + len(data)
        if isinstance(parent, list):
            self._charge((len(parent) - key) // SHIFTS_PER_BYTE)
        del parent[key]
        return value, data

    def apply(self, s: PatchStep) -> None:
        if s.op == "add":
            self._charge(len(s.data))
            self._insert(*self._locate(s, s.tokens, True), s.value, s.data, len(s.tokens))
        elif s.op == "remove":
            self._remove(s, *self._locate(s, s.tokens, False))
        elif s.op == "replace":
            self._charge(len(s.data))
            parent, key = self._locate(s, s.tokens, False)
            if parent is not self.holder and isinstance(parent, list):
                self._remove(s, parent, key)  # then insert at the same index
            self._insert(parent, key, s.value, s.data, len(s.tokens))
        elif s.op == "move":
            parent, key = self._locate(s, s.source, False)
            if s.source != s.tokens:
                value, data = self._remove(s, parent, key)
                self._insert(*self._locate(s, s.tokens, True), value, data, len(s.tokens))
        elif s.op == "copy":
            parent, key = self._locate(s, s.source, False)
            value = parent[key]
            self._insert(*self._locate(s, s.tokens, True), value, self._measure(value), len(s.tokens))
        else:  # test
            self._charge(len(s.data))
            parent, key = self._locate(s, s.tokens, False)
            if not json_equal(parent[key], s.value):
                raise PatchFailed(f"test failed at {s.path[:200] or '/'}: value differs", index=s.index)


def json_patch(current: Any, ops: Any, max_bytes: int = 1_048_576, max_depth: int = 64,
               max_ops: int = MAX_PATCH_OPS) -> Any:
    """Apply an RFC 6902 JSON Patch (a list of operations, or `parse_patch` steps) to a copy of the value."""
    return patch_json(encode(current), ops, max_bytes, max_depth, max_ops)


def patch_json(data: bytes, ops: Any, max_bytes: int = 1_048_576, max_depth: int = 64,
               max_ops: int = MAX_PATCH_OPS) -> Any:
    """`json_patch` of a value given as compact JSON (a stored value: decoded once, here)."""
    steps = parse_patch(ops, max_ops)
    p = _Patcher(data, max_bytes, max_depth)
    for step in steps:
        p.apply(step)
    return p.holder[0]
