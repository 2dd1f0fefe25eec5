"""JSON paths and JSON equality, as state queries and claim evidence use them (docs/compat.md, AgentState §6.5).

A path is `$` followed by segments `.name` (name `[A-Za-z_][A-Za-z0-9_]*`) or `[index]` (decimal digits);
`$` alone is the whole document. Nothing else (wildcards, `..`, slices, quoted names) is a path.
Equality is structural: objects by member set (order irrelevant), arrays element-wise, numbers by value
(`1 == 1.0`), and booleans are never numbers (`true != 1`).
"""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")
MISSING = object()  # what a path that does not resolve yields (a member holding null resolves to None)

Path = tuple[str | int, ...]


def parse(path: Any) -> Path | None:
    """The segments of `path`, or None when it is not a path of the grammar."""
    if not isinstance(path, str) or not path.startswith("$"):
        return None
    segments: list[str | int] = []
    i = 1
    while i < len(path):
        m = _SEGMENT.match(path, i)
        if m is None:
            return None
        segments.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        i = m.end()
    return tuple(segments)


def resolve(document: Any, path: Path) -> Any:
    """The value at `path` in `document`, or MISSING."""
    value = document
    for segment in path:
        if isinstance(segment, str):
            if not isinstance(value, dict) or segment not in value:
                return MISSING
            value = value[segment]
        else:
            if not isinstance(value, list) or segment >= len(value):
                return MISSING
            value = value[segment]
    return value


def equal(a: Any, b: Any) -> bool:
    """Structural JSON equality."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b
