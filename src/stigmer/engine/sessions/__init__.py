"""Semantic sessions (semvec spec §6): session vectors, turns, tiered memories, hybrid retrieval, drift.

Public API (`Sessions`, built once per app over the store and the server's embedder; every method takes
the tenant first, and another tenant's session is the same NotFound as a missing one):

- lifecycle: `create(tenant, session_id | None, kind="session", config=None, template=None) -> (id, created)`
  (idempotent for an existing id), `delete(tenant, id)` (Conflict for a backing/meta session), `count()`,
  `get_state(tenant, id) -> (SessionState, s)`, `metrics(tenant, id)`; for the console (overview.py):
  `page(tenant, kind="session", limit=50, before=None) -> (summaries newest first, next before)` and
  `detail(tenant, id) -> Detail` (summary and drift series).
- turns: `run(tenant, message, session_id=None, response=None, short_circuit_threshold=0.85,
  reset_context=False, user_id=None)` -> the /v1/run body; `store_turn(tenant, id, response, user_id,
  dedup_threshold)` -> dedup signal; `store_text(tenant, id, text, x=None, dedup_threshold=None, missing=...)`
  -> the §5.28 update report (a fixed chunk, pending message untouched: cluster store).
- control: `context`, `memory`, `add_trigger`, `clear_triggers`, `add_anchor`, `anchor_score`,
  `set_isolation`, `release`, `inject`; export/import/verify in `portable.py`, entities in `entities.py`.
- vectors: `vector(values)` (client vector → unit, Unprocessable for a wrong length or zero norm),
  `text_vector(text)`, `vectors(embeddings, texts)`, `embed(texts)`.

Inside a mutation (`store.submit(tenant, fn)`; for the coordination layers, which span sessions in one
transaction): `open(tx, id) -> Work | None`, `must_open(tx, id, missing)`, `create_in(tx, id, kind, config,
template)`, `reset_in(work)`, `delete_in(tx, id, backing_ok=False)`. A `Work` holds `state` (SessionState)
and `s` (the vector, float64); change them, call `work.store_chunk(text, x, ...)` for a turn (§6.2 report),
then `work.save()` once. Hooks run inside the mutation that triggers them: `drift_hooks` (tx, session id,
Drift) on a /v1/run turn with drift_detected, `delete_hooks` (tx, session id) before a session is deleted.
`maths` holds the open definitions (turn, phase, signals, retention, anchor score).
"""

from .engine import SESSION_NOT_FOUND, Sessions, Unprocessable
from .maths import Drift, Params
from .model import SessionState
from .work import Malformed, Work

__all__ = ["SESSION_NOT_FOUND", "Drift", "Malformed", "Params", "SessionState", "Sessions", "Unprocessable", "Work"]
