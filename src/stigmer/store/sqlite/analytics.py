"""Analytics on SQLite (store/analytics_rows.py): aggregate queries on the reader pool."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..analytics_rows import Analytics

if TYPE_CHECKING:
    from .store import SQLiteStore


def sqlite_analytics(store: "SQLiteStore") -> Analytics:
    return Analytics("?", "tag IN (SELECT value FROM json_each(?))", json.dumps, store.in_pool)
