"""JSON equality, numeric overflow and bounded JSON Patch: pure functions, no store."""

import time

import pytest

from stigmer.engine import values
from stigmer.engine.errors import InvalidArgument, PatchFailed, ValueTooLarge
from stigmer.engine.values import MISSING


@pytest.mark.parametrize("a, b", [
    (1, 1.0), (0, -0.0), ({"a": 1, "b": [1, 2]}, {"b": [1.0, 2], "a": 1.0}), ([], []), ({}, {}),
    (None, None), ("x", "x"), (True, True), (2**70, 2**70), ([{"x": False}], [{"x": False}]),
])
def test_json_equal_holds(a, b):
    assert values.json_equal(a, b) and values.json_equal(b, a)


@pytest.mark.parametrize("a, b", [
    (True, 1), (False, 0), (False, 0.0), (True, 1.0), ([True], [1]), ({"a": False}, {"a": 0}),
    (None, 0), (None, False), ("1", 1), ([1, 2], [2, 1]), ({"a": 1}, {"a": 1, "b": 2}), ([1], {"0": 1}),
    ({"a": 1}, [("a", 1)]), (2**53 + 1, float(2**53)),
])
def test_json_equal_refuses(a, b):
    assert not values.json_equal(a, b) and not values.json_equal(b, a)


@pytest.mark.parametrize("current, amount", [
    (0, 10**400), (10**400, 1), (1.5, 10**400), (10**400, 0.5), (2**1100, 2**1100), (1e308, 1e308),
], ids=["0+1e400", "1e400+1", "1.5+1e400", "1e400+0.5", "2^1100+2^1100", "1e308+1e308"])
def test_incr_beyond_float_range_is_invalid_argument(current, amount):
    with pytest.raises(InvalidArgument, match="finite"):
        values.incr(current, amount, None)


def test_incr_exact_int_sum_is_kept_when_it_fits():
    assert values.incr(10**400, -(10**400) + 5, None) == 5
    assert values.incr(values.INT64_MAX, 1, None) == float(2**63)


@pytest.mark.parametrize("value", [1, "x", [], {}, [1], [[]], {"a": {"b": []}}, [{}, [[{}]]],
                                   {"a": [{"b": 1}], "c": "]]]{{"}, ["\\", '\\"[', {'\\"{': ["\\\\"]}]])
def test_depth_on_bytes_matches_the_tree(value):
    def walk(v):
        if isinstance(v, dict):
            v = list(v.values())
        return 1 + max(map(walk, v), default=0) if isinstance(v, list) else 0
    assert values.depth(value) == walk(value)


# JSON Patch


def test_patch_ops_follow_rfc_6902():
    doc = {"a": {"b": 1}, "l": [1, 2], "x~/y": 3}
    ops = [
        {"op": "add", "path": "/l/1", "value": 9}, {"op": "add", "path": "/l/-", "value": 4},
        {"op": "remove", "path": "/l/0"}, {"op": "replace", "path": "/a/b", "value": [True]},
        {"op": "move", "from": "/x~0~1y", "path": "/m"}, {"op": "copy", "from": "/a", "path": "/c"},
        {"op": "test", "path": "/c", "value": {"b": [True]}}, {"op": "add", "path": "/c/b/0", "value": None},
    ]
    assert values.json_patch(doc, ops) == {"a": {"b": [True]}, "l": [9, 2, 4], "m": 3, "c": {"b": [None, True]}}
    assert doc == {"a": {"b": 1}, "l": [1, 2], "x~/y": 3}  # the input is untouched
    assert values.json_patch(doc, [{"op": "replace", "path": "", "value": 5}]) == 5
    assert values.json_patch({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}]) == {"a": 1}


@pytest.mark.parametrize("stored, tested", [(1, True), (0, False), (0.0, False), ({"a": True}, {"a": 1})])
def test_patch_test_never_equates_booleans_and_numbers(stored, tested):
    with pytest.raises(PatchFailed) as e:
        values.json_patch({"v": stored}, [{"op": "test", "path": "/v", "value": tested}])
    assert e.value.message == "test failed at /v: value differs"


def test_patch_test_follows_the_json_data_model():
    doc = {"v": {"a": 1, "b": [1, 2]}}
    assert values.json_patch(doc, [{"op": "test", "path": "/v", "value": {"b": [1.0, 2], "a": 1.0}}]) == doc


def test_patch_failure_messages_show_no_python_internals():
    with pytest.raises(PatchFailed) as e:
        values.json_patch({"a": 2}, [{"op": "test", "path": "/a", "value": 1}])
    assert e.value.message == "test failed at /a: value differs"
    with pytest.raises(PatchFailed) as e:
        values.json_patch({"a": [1]}, [{"op": "remove", "path": "/a/5"}])
    assert e.value.message == "patch op 0 (remove): path /a/5 does not exist"
    with pytest.raises(PatchFailed) as e:
        values.json_patch({"a": 1}, [{"op": "copy", "from": "/b", "path": "/c"}])
    assert e.value.message == "patch op 0 (copy): from /b does not exist"


@pytest.mark.parametrize("ops, message", [
    ({"op": "add"}, "must be an array"),
    ([1], "patch op 0 must be an object"),
    ([{"op": "frobnicate", "path": "/a"}], "op must be one of"),
    ([{"path": "/a"}], "op must be one of"),
    ([{"op": "add", "path": "a", "value": 1}], "must be empty or start with '/'"),
    ([{"op": "add", "path": 5, "value": 1}], "path must be a string"),
    ([{"op": "add", "path": "/a"}], "add needs a value"),
    ([{"op": "copy", "path": "/a"}], "from must be a string"),
    ([{"op": "remove", "path": "/a~2"}], "invalid '~' escape"),
    ([{"op": "move", "from": "/a", "path": "/a/b"}], "cannot move a value into itself"),
    ([{"op": "test", "path": "/a", "value": 1}] * 1001, "at most 1000 operations"),
])
def test_patch_document_shape_errors_are_clean(ops, message):
    with pytest.raises(InvalidArgument, match=message) as e:
        values.json_patch({"a": 1}, ops)
    assert "<class" not in e.value.message and "Error" not in e.value.message


@pytest.mark.parametrize("path", ["/l/01", "/l/-1", "/l/3", "/l/99999999999999999999999", "/l/x", "/s/0"])
def test_patch_bad_array_index_fails_cleanly(path):
    with pytest.raises(PatchFailed, match="does not exist"):
        values.json_patch({"l": [1, 2], "s": "str"}, [{"op": "add", "path": path, "value": 0}])


def test_patch_doubling_copies_stop_at_the_size_limit_at_once():
    # 870 bytes of copy ops doubling the document held the writer for seconds and hundreds of MB.
    ops = [{"op": "add", "path": "/a", "value": "x" * 100}] + [
        {"op": "copy", "from": "/a", "path": "/b"} if i == 0 else {"op": "copy", "from": "", "path": f"/c{i}"}
        for i in range(40)]
    start = time.perf_counter()
    with pytest.raises(ValueTooLarge):
        values.json_patch({}, ops, max_bytes=1_048_576)
    assert time.perf_counter() - start < 0.5


def test_patch_size_is_tracked_exactly():
    doc = {"a": [1, {"b": "c"}], "d": "é"}
    ops = [{"op": "add", "path": "/a/1/e", "value": [1, 2]}, {"op": "remove", "path": "/d"},
           {"op": "copy", "from": "/a", "path": "/z"}, {"op": "move", "from": "/z/0", "path": "/y"},
           {"op": "replace", "path": "/a/0", "value": "long"}, {"op": "add", "path": "/a/-", "value": {}}]
    out = values.json_patch(doc, ops)
    size = len(values.encode(out))
    values.json_patch(doc, ops, max_bytes=size)  # exactly at the limit passes
    with pytest.raises(ValueTooLarge):
        values.json_patch(doc, ops, max_bytes=size - 1)


def test_patch_depth_is_bounded_as_it_runs():
    ops = [{"op": "copy", "from": "", "path": "/a"}] * 10
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        values.json_patch({"x": 1}, ops, max_depth=5)
    deep = [{"op": "add", "path": "/a" * (i + 1), "value": {}} for i in range(6)]
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        values.json_patch({}, deep, max_depth=5)


def test_patch_total_work_is_bounded():
    # copy a large member then remove it, again and again: the document stays small, the work does not
    doc = {"big": ["x" * 100] * 1000}  # ~100 kB
    ops = [op for i in range(100) for op in (
        {"op": "copy", "from": "/big", "path": "/tmp"}, {"op": "remove", "path": "/tmp"})]
    start = time.perf_counter()
    with pytest.raises(InvalidArgument, match="too costly"):
        values.json_patch(doc, ops, max_bytes=250_000)
    assert time.perf_counter() - start < 0.5


def test_patch_cannot_remove_the_root():
    with pytest.raises(PatchFailed, match="whole value"):
        values.json_patch({"a": 1}, [{"op": "remove", "path": ""}])


def test_missing_is_not_a_value():
    assert values.incr(MISSING, 2, None) == 2


def test_patch_size_tracking_is_exact_after_every_op_fuzz():
    import random
    rnd = random.Random(7)
    leaves = [0, 1.5, -2, True, False, None, "s", "é\"\\", [], {}, [1, [2]], {"k": {"j": [None]}}]

    def pointers(v, base=""):
        yield base
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, child in items:
            yield from pointers(child, f"{base}/{str(k).replace('~', '~0').replace('/', '~1')}")

    checked = 0
    for _ in range(300):
        p = values._Patcher(values.encode({"a": [1, {"b": "c"}], "x/y": {}}), 1 << 20, 64)
        for i in range(12):
            ptrs = list(pointers(p.holder[0]))
            op = rnd.choice(values.PATCH_OPS)
            raw = {"op": op, "path": rnd.choice(ptrs) + rnd.choice(["", "/-", "/0", "/new"])}
            if op in ("move", "copy"):
                raw["from"] = rnd.choice(ptrs)
            elif op != "remove":
                raw["value"] = rnd.choice(leaves)
            try:
                (step,) = values.parse_patch([raw])
                p.apply(step)
            except (PatchFailed, InvalidArgument):
                continue
            assert p.size == len(values.encode(p.holder[0])), raw
            checked += 1
    assert checked > 1000
