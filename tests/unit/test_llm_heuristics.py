"""AgentState D7: the deterministic title and follow-ups, and the cleaning of a model's answers."""

import asyncio

import pytest

from stigmer.support.llm import LLM, clean_title, heuristic_follow_ups, heuristic_title, parse_follow_ups


def user(text):
    return {"role": "user", "content": text}


def test_title_is_the_first_user_message_with_whitespace_collapsed():
    messages = [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "hi"},
                user("  How do\t\tleases\n\nwork?  "), user("second")]
    assert heuristic_title(messages) == "How do leases work?"


def test_a_title_of_exactly_60_chars_is_kept_whole():
    text = "a" * 30 + " " + "b" * 29
    assert len(text) == 60
    assert heuristic_title([user(text)]) == text


def test_a_long_title_is_cut_at_the_last_space_within_60_chars():
    text = "Configuring leases and fencing tokens for a fleet of agents that share one key"
    title = heuristic_title([user(text)])
    assert title == "Configuring leases and fencing tokens for a fleet of agents"
    assert len(title) <= 60 and text.startswith(title)


def test_the_cut_counts_chars_after_collapsing():
    text = "word   " * 20  # collapsed: "word word ..." (99 chars)
    assert heuristic_title([user(text)]) == " ".join(["word"] * 12)  # 59 chars; a 13th would reach 64


def test_a_long_title_without_a_space_is_hard_cut_at_60():
    assert heuristic_title([user("x" * 100)]) == "x" * 60
    assert heuristic_title([user("y" * 61 + " tail")]) == "y" * 60


def test_no_user_message_gives_untitled_conversation():
    assert heuristic_title([]) == "Untitled conversation"
    assert heuristic_title([{"role": "assistant", "content": "hello"}]) == "Untitled conversation"


def test_unicode_is_counted_in_code_points_and_unicode_spaces_collapse():
    text = "Les\u00a0baux\u3000et " + "é" * 70  # no-break and ideographic spaces are whitespace
    assert heuristic_title([user(text)]) == "Les baux et"
    emoji = "🦊" * 80
    assert heuristic_title([user(emoji)]) == "🦊" * 60
    assert heuristic_title([user("日本語のタイトル")]) == "日本語のタイトル"


def test_follow_ups_heuristic_is_empty():
    assert heuristic_follow_ups([user("anything?")]) == []


def test_an_unconfigured_llm_uses_the_heuristics():
    llm = LLM("", "", "m", 1.0)
    assert not llm.configured
    messages = [user("Why is the sky blue?")]
    assert asyncio.run(llm.title(messages)) == "Why is the sky blue?"
    assert asyncio.run(llm.follow_ups(messages)) == []
    assert asyncio.run(llm.complete("s", "u")) is None


def test_the_title_heuristic_sees_only_the_first_20_messages():
    messages = [{"role": "assistant", "content": "x"}] * 20 + [user("too late")]
    assert asyncio.run(LLM("", "", "m", 1.0).title(messages)) == "Untitled conversation"


@pytest.mark.parametrize("answer, title", [
    ('"Configuring leases"', "Configuring leases"),
    ("Title: \u201cFencing tokens\u201d\nbecause the user asked", "Fencing tokens"),
    ("\n\n  'Quoted'  ", "Quoted"),
    ("one two " * 20, "one two one two one two one two one two one two one two one"),
    ('""', ""),
])
def test_a_model_title_is_one_line_unquoted_and_cut_at_60(answer, title):
    assert clean_title(answer) == title


@pytest.mark.parametrize("answer, questions", [
    ('["What is a lease?", " How long is a TTL? ", "", 3, "Third?", "Fourth?"]',
     ["What is a lease?", "How long is a TTL?", "Third?"]),
    ('```json\n["A?", "B?"]\n```', ["A?", "B?"]),
    ("1. First?\n- Second?\n\n* Third?\n• Fourth?", ["First?", "Second?", "Third?"]),
    ('{"questions": ["a"]}', []),
    ('"Only one?"', ["Only one?"]),
])
def test_model_follow_ups_are_a_json_array_or_lines_at_most_n(answer, questions):
    assert parse_follow_ups(answer, 3) == questions


def test_follow_ups_are_cut_to_n():
    assert parse_follow_ups('["a", "b", "c"]', 1) == ["a"]
    assert parse_follow_ups('["a", "b", "c"]', 0) == []
