"""The typical Python baseline: FastAPI + SQLAlchemy 2 (async, aiosqlite), GET/PUT of a versioned key.

Same shape and durability as Stigmer's native API for the benchmarked routes: WAL, synchronous=FULL,
one transaction per request (the usual way to write this service), version +1 on each PUT.
Run: STIGMER_PEER_DB=/tmp/x.db uvicorn fastapi_kv:app --loop uvloop --http httptools
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from sqlalchemy import JSON, Integer, String, event, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB = os.environ.get("STIGMER_PEER_DB", "peer.db")
engine = create_async_engine(f"sqlite+aiosqlite:///{DB}", connect_args={"timeout": 30})


@event.listens_for(engine.sync_engine, "connect")
def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


Session = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "entries"
    ns: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)


app = FastAPI()


@app.on_event("startup")
async def _create() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


@app.get("/v1/kv/{ns}/{key}")
async def get_key(ns: str, key: str) -> dict[str, Any]:
    async with Session() as session:
        row = (await session.execute(select(Entry).where(Entry.ns == ns, Entry.key == key))).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, "key not found")
    return {"namespace": ns, "key": key, "value": row.value, "version": row.version}


@app.put("/v1/kv/{ns}/{key}")
async def put_key(ns: str, key: str, value: Any = Body(...)) -> dict[str, Any]:
    stmt = insert(Entry).values(ns=ns, key=key, value=value, version=1)
    stmt = stmt.on_conflict_do_update(index_elements=[Entry.ns, Entry.key],
                                      set_={"value": stmt.excluded.value, "version": Entry.version + 1})
    async with Session() as session, session.begin():
        version = (await session.execute(stmt.returning(Entry.version))).scalar_one()
    return {"namespace": ns, "key": key, "version": version}
