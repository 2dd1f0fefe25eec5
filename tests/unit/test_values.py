import pytest

from stigmer.engine import values
from stigmer.engine.errors import InvalidArgument, PatchFailed, TypeMismatch, ValueTooLarge
from stigmer.engine.values import MISSING


def test_encode_is_compact_utf8_and_round_trips_order_and_types():
    raw = b'{"b":1,"a":[1.0,2,"\xc3\xa9"],"big":18446744073709551615,"f":0.30000000000000004}'
    v = values.decode(raw)
    assert list(v) == ["b", "a", "big", "f"]
    assert isinstance(v["a"][0], float) and isinstance(v["a"][1], int)
    assert values.encode(v) == raw


def test_decode_rejects_nan_and_deep_nesting_with_invalid_argument():
    with pytest.raises(InvalidArgument):
        values.decode(b"NaN")
    with pytest.raises(InvalidArgument):
        values.decode(b"[" * 100000 + b"]" * 100000)


def test_depth_counts_containers():
    assert values.depth(1) == 0
    assert values.depth([]) == 1 and values.depth({}) == 1 and values.depth([1]) == 1
    assert values.depth({"a": [{"b": []}]}) == 4


def test_check_value_limits_size_exactly():
    s = "x" * 98  # encodes to 100 bytes with quotes
    assert values.check_value(s, 100, 64) == b'"' + s.encode() + b'"'
    with pytest.raises(ValueTooLarge):
        values.check_value(s + "x", 100, 64)
    deep: list = []
    for _ in range(65):
        deep = [deep]
    with pytest.raises(InvalidArgument):
        values.check_value(deep, 10**6, 64)


def test_incr_whole_value_and_int64_overflow_to_double():
    assert values.incr(MISSING, 1, None) == 1
    assert values.incr(2, 0.5, None) == 2.5
    assert values.incr(values.INT64_MAX, 1, None) == float(values.INT64_MAX) + 1
    assert isinstance(values.incr(values.INT64_MAX - 1, 1, None), int)
    assert values.incr(0.1, 0.2, None) == 0.30000000000000004
    with pytest.raises(TypeMismatch) as e:
        values.incr(True, 1, None)
    assert e.value.reason == "value_is_not_a_number"


def test_incr_field_keeps_member_order_and_checks_types():
    assert values.incr({"a": 1, "b": 2}, 5, ["a"]) == {"a": 6, "b": 2}
    assert list(values.incr({"b": 2}, 1, ["a"])) == ["b", "a"]
    assert values.incr(MISSING, 3, ["x", "y"]) == {"x": {"y": 3}}
    with pytest.raises(TypeMismatch) as e:
        values.incr([1], 1, ["a"])
    assert e.value.reason == "value_is_not_an_object"
    with pytest.raises(TypeMismatch) as e:
        values.incr({"a": "1"}, 1, ["a"])
    assert e.value.reason == "field_is_not_a_number"


def test_merge_shallow_deep_and_rfc7386():
    cur = {"users": {"alice": 1}, "n": 1}
    assert values.merge(cur, {"users": {"bob": 2}}) == {"users": {"bob": 2}, "n": 1}
    assert values.merge(cur, {"users": {"bob": 2}}, deep=True) == {"users": {"alice": 1, "bob": 2}, "n": 1}
    assert values.merge(cur, {"n": None}) == {"users": {"alice": 1}, "n": None}
    assert values.merge(cur, {"n": None, "users": {"alice": None}}, deep=True, null_deletes=True) == {"users": {}}
    assert values.merge(MISSING, {"a": None, "b": {"c": None}}, deep=True, null_deletes=True) == {"b": {}}
    assert values.merge(MISSING, {"a": None}) == {"a": None}
    with pytest.raises(TypeMismatch):
        values.merge([1], {"a": 1})
    with pytest.raises(InvalidArgument):
        values.merge({}, [1])


def test_append_with_max_trims_longer_lists():
    assert values.append(MISSING, [1], None) == [[1]]
    assert values.append(["a", "b", "c"], "d", 3) == ["b", "c", "d"]
    assert values.append(["a", "b", "c", "d"], "e", 2) == ["d", "e"]
    with pytest.raises(TypeMismatch):
        values.append({}, 1, None)


def test_json_patch_applies_and_reports_failures():
    doc = {"a": 1, "l": [1]}
    assert values.json_patch(doc, [{"op": "add", "path": "/l/-", "value": 2}, {"op": "remove", "path": "/a"}]) == {"l": [1, 2]}
    assert doc == {"a": 1, "l": [1]}  # the input is not modified
    with pytest.raises(PatchFailed):
        values.json_patch(doc, [{"op": "test", "path": "/a", "value": 2}])
    with pytest.raises(PatchFailed):
        values.json_patch(doc, [{"op": "remove", "path": "/nope"}])
    with pytest.raises(InvalidArgument):
        values.json_patch(doc, [{"op": "frobnicate", "path": "/a"}])
    with pytest.raises(InvalidArgument):
        values.json_patch(doc, {"op": "add"})
