"""Analytics on PostgreSQL (store/analytics_rows.py): aggregate queries on the pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..analytics_rows import Analytics

if TYPE_CHECKING:
    from .store import PostgresStore


def postgres_analytics(store: "PostgresStore") -> Analytics:
    return Analytics("%s", "tag = ANY(%s::text[])", list, store.fetch)
