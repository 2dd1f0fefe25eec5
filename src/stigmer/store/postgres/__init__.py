"""The PostgreSQL store (scale-out): several replicas on one database. Needs `pip install stigmer[postgres]`."""

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"the PostgreSQL store needs psycopg 3 and psycopg-pool: install stigmer[postgres] ({exc})") from exc

from .store import PostgresStore

__all__ = ["PostgresStore"]
