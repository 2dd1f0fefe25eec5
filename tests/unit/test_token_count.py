"""cl100k_base token counts and truncation (Statewave spec §6.7) from the shipped vocabulary, and the fallback when
the vocabulary cannot be loaded (a missing or a wrong file given to the loader)."""

from __future__ import annotations

import logging

import pytest

from stigmer.support import tokencount
from stigmer.support.tokencount import TokenCounter


@pytest.mark.parametrize("text, tokens", [
    ("hello world", 2),
    ("", 0),
    ("tiktoken is great!", 6),  # tiktoken's own example: [83, 1609, 5963, 374, 2294, 0]
    ("## Task\nhello world\n", 6),  # the context header of task `hello world`: token_estimate 6 in §5.8
    ("<|endoftext|>", 7),  # special-token text is ordinary text: `<`, `|`, `endo`, `ft`, `ext`, `|`, `>`
    ("<|endoftext|><|fim_prefix|>", 13),  # `><` merges into one token
    ("Hello, world! 你好", 7),
    ("🟢 go", 4),
])
def test_known_cl100k_counts(text, tokens):
    assert tokencount.count(text) == tokens


def test_the_shipped_vocabulary_is_used():
    assert tokencount.shipped_vocabulary() is not None
    assert TokenCounter().exact


def test_first_n_tokens_decoded():
    assert tokencount.first("hello world", 1) == "hello"
    assert tokencount.first("hello world", 2) == "hello world"
    assert tokencount.first("hello world", 50) == "hello world"
    assert tokencount.first("hello world", 0) == ""
    assert tokencount.first("<|endoftext|>", 3) == "<|endo"


def test_a_cut_utf8_sequence_becomes_the_replacement_character():
    assert tokencount.first("🟢", 1) == "\ufffd"  # the spec's example: 🟢 is three tokens of its four bytes
    assert tokencount.first("🟢 go", 2) == "\ufffd"
    assert tokencount.first("🟢 go", 3) == "🟢"
    assert tokencount.first("你好", 1) == "你"


def fallback_counter(path, caplog) -> TokenCounter:
    counter = TokenCounter(path)
    with caplog.at_level(logging.WARNING, logger="stigmer.tokencount"):
        assert not counter.exact
        assert counter.count("hello world") == 3  # ceil(11 / 4)
        assert counter.count("abcdefgh") == 2
        assert counter.count("") == 0
        assert counter.count("🟢🟢🟢🟢🟢") == 2  # code points, not bytes
        assert counter.first("abcdefghij", 2) == "abcdefgh"
        assert counter.first("🟢🟢🟢🟢🟢", 1) == "🟢🟢🟢🟢"
        assert counter.first("abc", 0) == ""
    return counter


def test_a_missing_vocabulary_falls_back_with_one_warning(tmp_path, caplog):
    fallback_counter(tmp_path / "cl100k_base.tiktoken", caplog)
    (warning,) = [r for r in caplog.records if r.name == "stigmer.tokencount"]
    assert warning.levelno == logging.WARNING
    assert "FileNotFoundError" in warning.getMessage() and "ceil(characters/4)" in warning.getMessage()


def test_a_vocabulary_that_is_not_cl100k_falls_back(tmp_path, caplog):
    wrong = tmp_path / "cl100k_base.tiktoken"
    wrong.write_bytes(b"aGVsbG8= 0\nd29ybGQ= 1\n")
    fallback_counter(wrong, caplog)
    (warning,) = [r for r in caplog.records if r.name == "stigmer.tokencount"]
    assert "SHA-256 differs" in warning.getMessage()
