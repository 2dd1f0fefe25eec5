"""Group commit's first step, shared by both stores' writers: what is pending becomes one group."""

from __future__ import annotations

import queue
from typing import TypeVar

J = TypeVar("J")


def take_group(q: "queue.SimpleQueue[J | None]", first: J, limit: int) -> tuple[list[J], bool]:
    """`first` and whatever else is already queued, up to `limit` jobs; True when the stop mark (None) came."""
    group = [first]
    while len(group) < limit:
        try:
            job = q.get_nowait()
        except queue.Empty:
            break
        if job is None:
            return group, True
        group.append(job)
    return group, False
