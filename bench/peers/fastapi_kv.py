"""The typical Python baseline in its best configuration: FastAPI + SQLAlchemy 2 Core (sync, pysqlite),
GET/PUT of a versioned key.

Same shape and durability as Stigmer's native API for the benchmarked routes: WAL, synchronous=FULL,
one transaction per request (the usual way to write this service), version +1 on each PUT. Plain `def`
endpoints run on FastAPI's thread pool (anyio, 40 threads) with a 40-connection pool: of the variants tried
(async ORM on aiosqlite, async Core, sync ORM, sync Core) this one was the fastest on this machine.
Run: STIGMER_PEER_DB=/tmp/x.db uvicorn fastapi_kv:app --loop uvloop --http httptools
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, event, select
from sqlalchemy.dialects.sqlite import insert

DB = os.environ.get("STIGMER_PEER_DB", "peer.db")
THREADS = 40
engine = create_engine(f"sqlite:///{DB}", pool_size=THREADS, max_overflow=0,
                       connect_args={"timeout": 30, "check_same_thread": False})


@event.listens_for(engine, "connect")
def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


meta = MetaData()
entries = Table("entries", meta, Column("ns", String, primary_key=True), Column("key", String, primary_key=True),
                Column("value", Text), Column("version", Integer))


@asynccontextmanager
async def lifespan(_app: FastAPI):
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    meta.create_all(engine)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/v1/kv/{ns}/{key}")
def get_key(ns: str, key: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(entries.c.value, entries.c.version)
                           .where(entries.c.ns == ns, entries.c.key == key)).first()
    if row is None:
        raise HTTPException(404, "key not found")
    return {"namespace": ns, "key": key, "value": json.loads(row.value), "version": row.version}


@app.put("/v1/kv/{ns}/{key}")
def put_key(ns: str, key: str, value: Any = Body(...)) -> dict[str, Any]:
    stmt = insert(entries).values(ns=ns, key=key, value=json.dumps(value), version=1)
    stmt = stmt.on_conflict_do_update(index_elements=[entries.c.ns, entries.c.key],
                                      set_={"value": stmt.excluded.value, "version": entries.c.version + 1})
    with engine.begin() as conn:
        version = conn.execute(stmt.returning(entries.c.version)).scalar_one()
    return {"namespace": ns, "key": key, "version": version}
