"""Fencing tokens on key writes: a write that carries `Fence(resource, token)` is applied only while
`token` is the token of the resource's active lease, checked inside the same mutation as the write.

A token lower than the newest one is superseded forever; the newest one fences only while its lease is
active (not released, not expired at the store clock's `tx.now`); a token never issued fences nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import msgspec

from .errors import FenceStale, InvalidArgument

if TYPE_CHECKING:
    from ..store.base import WriteTxn

MAX_TOKEN = 2**63 - 1


class Fence(msgspec.Struct, frozen=True):
    resource: str
    token: int

    def __str__(self) -> str:
        return format_fence(self.resource, self.token)


def format_fence(resource: str, token: int) -> str:
    """`<resource>:<token>`, the resource percent-encoded (UTF-8) so any name fits in a header."""
    return f"{quote(resource, safe='/')}:{token}"


def parse_fence(text: str) -> Fence:
    """The inverse of `format_fence`; InvalidArgument(field="fence") for anything else."""
    encoded, sep, digits = text.strip().rpartition(":")
    if not sep or not encoded or not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise InvalidArgument("a fence is <resource>:<token>, the resource percent-encoded", field="fence")
    token = int(digits)
    if not 1 <= token <= MAX_TOKEN:
        raise InvalidArgument(f"a fencing token is an integer from 1 to {MAX_TOKEN}", field="fence")
    try:
        resource = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise InvalidArgument("the fence's resource is not UTF-8 once percent-decoded", field="fence") from None
    return Fence(resource, token)


def check(tx: "WriteTxn", fence: Fence) -> None:
    """Raise FenceStale unless `fence` is the token of the resource's active lease (reads only)."""
    lease = tx.leases.get(fence.resource)
    current = lease.token if lease is not None else 0
    if lease is None or fence.token != lease.token:
        reason = "superseded" if fence.token < current else "not_issued"
    elif lease.released_at is not None:
        reason = "released"
    elif lease.expires_at <= tx.now:
        reason = "expired"
    else:
        return
    raise FenceStale(f"fencing token {fence.token} of {fence.resource!r} is stale ({reason.replace('_', ' ')})",
                     resource=fence.resource, token=fence.token, current_token=current, reason=reason)
