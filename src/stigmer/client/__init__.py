"""The Stigmer Python SDK: `Client` (blocking) and `AsyncClient` (asyncio) over the native /v1 API.

    from stigmer.client import Client
    with Client("http://127.0.0.1:7474") as c:
        c.put("agents", "a1/status", {"state": "idle"})
        for cs in c.watch("agents", prefix="a1/"):
            ...
"""

from ._async import AsyncClient
from ._base import DEFAULT_URL, Retry
from ._sync import Client
from .errors import (
    CompactedError, CompareFailedError, ConflictError, ConnectionFailedError, InvalidArgumentError, InvalidJSONError,
    MethodNotAllowedError, NotFoundError, PatchFailedError, PayloadTooLargeError, PreconditionFailedError,
    ServerError, StigmerError, TypeMismatchError, ValueTooLargeError, VersionConflictError, UnauthenticatedError,
    ForbiddenError, RateLimitedError, FenceStaleError, LeaseConflictError, LeaseExpiredError,
    IdempotencyConflictError, IdempotencyInProgressError,
)
from .models import (
    Change, ChangeSet, Compare, CreatedToken, Deleted, Entry, HistoryPage, Lease, Op, Page, PollResult, Revision, Token,
    TxnResult,
)
from .models import Claim, ClaimPage, ClaimResult, ClaimRun, ClaimRunPage, Evidence
from .models import Conversation, ConversationPage, Memory, Message, MessagePage, SearchHit, SearchPage

__all__ = [
    "Client", "AsyncClient", "Retry", "DEFAULT_URL",
    "Entry", "Deleted", "Change", "ChangeSet", "Page", "HistoryPage", "TxnResult", "Revision", "PollResult",
    "Compare", "Op",
    "StigmerError", "InvalidArgumentError", "InvalidJSONError", "NotFoundError", "ConflictError",
    "VersionConflictError", "TypeMismatchError", "PatchFailedError", "CompareFailedError",
    "PreconditionFailedError", "ValueTooLargeError", "PayloadTooLargeError", "CompactedError",
    "MethodNotAllowedError", "ServerError", "ConnectionFailedError", "UnauthenticatedError", "ForbiddenError",
    "RateLimitedError", "Lease", "LeaseConflictError", "LeaseExpiredError", "FenceStaleError", "Token", "CreatedToken",
    "Claim", "ClaimPage", "ClaimResult", "ClaimRun", "ClaimRunPage", "Evidence",
    "Conversation", "ConversationPage", "Message", "MessagePage", "SearchHit", "SearchPage", "Memory",
    "IdempotencyConflictError", "IdempotencyInProgressError",
]
from .statevector import BadRequest, Conflict, RateLimited, StateVecError, StateVector, ValueTooLarge  # noqa: E402,F401  statevec protocol client
