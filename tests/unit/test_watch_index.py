"""engine/watch_index.py: a change finds the buckets it matches by lookups, and a bucket gets only its part."""

from stigmer.engine.types import Change, ChangeFilter, ChangeSet
from stigmer.engine.watch_index import TenantIndex


class W:
    def __init__(self, flt):
        self.filter = flt


def change(ns, key, rev=1):
    return Change("t", rev, ns, key, "put", b"1", None, 1, 0.0)


def test_match_by_key_prefix_namespace_and_tenant():
    idx = TenantIndex()
    ws = {name: W(ChangeFilter("t", *args, **kw)) for name, args, kw in [
        ("key", ("ns",), {"key": "a/b"}), ("prefix", ("ns",), {"prefix": "a/"}), ("ns", ("ns",), {}),
        ("other_ns", ("zz",), {}), ("other_key", ("ns",), {"key": "a/c"}), ("long", ("ns",), {"prefix": "a/b/c"}),
        ("wide", (), {}), ("wide_hidden", (), {"hidden": ("ns",)})]}
    for w in ws.values():
        idx.add(w)
    found = {w for b, part in idx.match(ChangeSet(1, [change("ns", "a/b")])) for w in b.members()}
    assert found == {ws["key"], ws["prefix"], ws["ns"], ws["wide"]}
    assert idx.count == 8 and sorted(idx.lengths) == [0, 2, 5]


def test_a_transaction_gives_each_bucket_its_own_part_and_whole_matches_share_the_set():
    idx = TenantIndex()
    a, b, both = W(ChangeFilter("t", "ns", key="a")), W(ChangeFilter("t", "ns", key="b")), W(ChangeFilter("t", "ns"))
    for w in (a, b, both):
        idx.add(w)
    cs = ChangeSet(3, [change("ns", "a", 3), change("ns", "b", 3), change("x", "a", 3)])
    parts = {w: part for bucket, part in idx.match(cs) for w in bucket.members()}
    assert [c.key for c in parts[a].changes] == ["a"] and [c.key for c in parts[b].changes] == ["b"]
    assert [c.key for c in parts[both].changes] == ["a", "b"] and parts[a].revision == 3
    whole = ChangeSet(4, [change("ns", "a", 4), change("ns", "b", 4)])
    assert next(part for bucket, part in idx.match(whole) if both in bucket.members()) is whole


def test_removal_empties_the_tables():
    idx = TenantIndex()
    ws = [W(ChangeFilter("t", "ns", prefix="p")), W(ChangeFilter("t", "ns", prefix="p")), W(ChangeFilter("t", "ns", key="k"))]
    for w in ws:
        idx.add(w)
    assert len(idx.prefixes) == 1 and len(next(iter(idx.prefixes.values())).members()) == 2
    for w in ws:
        assert idx.remove(w)
    assert not idx.remove(ws[0])
    assert idx.count == 0 and not idx.prefixes and not idx.keys and not idx.lengths
    assert idx.match(ChangeSet(1, [change("ns", "p1")])) == []


def test_a_change_set_renders_once_per_format():
    cs, calls = ChangeSet(1, [change("ns", "a")]), []

    def render(s):
        calls.append(s)
        return b"x%d" % s.revision

    assert cs.encoded("f", render) is cs.encoded("f", render) and calls == [cs]
    assert cs.encoded("g", render) == b"x1" and len(calls) == 2
