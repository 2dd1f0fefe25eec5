"""JSON paths and equality (AgentState §6.5): the grammar, resolution and structural equality."""

import pytest

from stigmer.engine import jsonpath
from stigmer.engine.jsonpath import MISSING


@pytest.mark.parametrize("text,segments", [
    ("$", ()), ("$.a", ("a",)), ("$.a_1.B", ("a_1", "B")), ("$[0]", (0,)), ("$.a[12].b", ("a", 12, "b")),
    ("$._x", ("_x",)),
])
def test_paths_of_the_grammar(text, segments):
    assert jsonpath.parse(text) == segments


@pytest.mark.parametrize("text", ["", "a", "$.", "$..a", "$.*", "$[*]", "$[-1]", "$['a']", "$.1a", "$[0:1]",
                                  "$ .a", "$.a.", "$[]", None, 5])
def test_anything_else_is_not_a_path(text):
    assert jsonpath.parse(text) is None


def test_resolution():
    doc = {"a": {"b": [10, {"c": None}]}, "n": None}
    assert jsonpath.resolve(doc, ()) == doc
    assert jsonpath.resolve(doc, ("a", "b", 0)) == 10
    assert jsonpath.resolve(doc, ("a", "b", 1, "c")) is None
    assert jsonpath.resolve(doc, ("n",)) is None
    assert jsonpath.resolve(doc, ("a", "b", 2)) is MISSING  # out of range
    assert jsonpath.resolve(doc, ("a", "b", "x")) is MISSING  # a name on an array
    assert jsonpath.resolve(doc, ("a", 0)) is MISSING  # an index on an object
    assert jsonpath.resolve(doc, ("zz",)) is MISSING
    assert jsonpath.resolve(doc, ("n", "x")) is MISSING


@pytest.mark.parametrize("a,b,same", [
    (1, 1.0, True), (True, 1, False), (1, True, False), (False, 0, False), (True, True, True),
    ({"a": 1, "b": [1, 2]}, {"b": [1, 2.0], "a": 1}, True), ([1, 2], [2, 1], False),
    ({"a": 1}, {"a": 1, "b": None}, False), (None, None, True), (None, 0, False), ("1", 1, False),
    ("x", "x", True), ([], {}, False), ({"a": {"b": None}}, {"a": {"b": None}}, True),
])
def test_structural_equality(a, b, same):
    assert jsonpath.equal(a, b) is same
    assert jsonpath.equal(b, a) is same
