"""Properties of attenuation over a real SQLite store: random trees of tokens minted from random roots
never hold a right, a key or a moment their root lacks; a request within its parent is never refused; and
revoking any token refuses it and every descendant at once, and nothing else.

The rights are checked against a reference table written here, not against engine/access.py."""

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from stigmer.clock import ManualClock
from stigmer.engine.access import GRANTABLE, Grant, Principal
from stigmer.engine.errors import Forbidden
from stigmer.engine.keys import Keys
from stigmer.engine.tokens import TOKEN_SCOPES, Tokens, principal_of
from stigmer.store.sqlite import SQLiteStore

FINE = {"conversations": ["read", "write"], "state": ["read", "write", "watch"], "lease": ["write"],
        "claim": ["read", "write"], "analytics": ["read"], "webhooks": ["write"], "domains": ["write"],
        "keys": ["read", "write"]}
CONCRETE = {"read", "write", "watch", "admin", *(f"{r}:{a}" for r, acts in FINE.items() for a in acts)}
NATIVE = {"read": {"state:read", "claim:read", "conversations:read", "analytics:read"},
          "write": {"state:write", "lease:write", "claim:write", "conversations:write"},
          "watch": {"state:watch"}}


def ref_rights(scopes) -> set[str]:
    out: set[str] = set()
    for s in scopes:
        if s in ("*", "admin"):
            out |= CONCRETE
        elif s.endswith(":*"):
            out |= {f"{s[:-2]}:{a}" for a in FINE[s[:-2]]}
        else:
            out |= {s, *NATIVE.get(s, ())}
    return out


NAMESPACES = ["a", "b"]
KEYS = [""] + [k for n in (1, 2, 3) for k in __import__("itertools").product("xy", repeat=n)]
POINTS = [(ns, "".join(k)) for ns in NAMESPACES for k in KEYS]


def points(grants) -> set:
    return {(ns, k) for ns, k in POINTS if grants is None or any(g.covers(ns, k) for g in grants)}


def inf(t):
    return float("inf") if t is None else t


prefix_st = st.builds(lambda ns, k: ns + ("/" + k if k else ""), st.sampled_from(NAMESPACES), st.text("xy", max_size=3))
request_st = st.tuples(
    st.integers(0, 1000),  # which existing node is the parent (modulo their number)
    st.sets(st.sampled_from(TOKEN_SCOPES), min_size=1, max_size=4),
    st.lists(prefix_st, max_size=2),
    st.one_of(st.none(), st.integers(1, 200)),
)
root_st = st.tuples(st.sets(st.sampled_from(GRANTABLE), min_size=1, max_size=4),
                    st.one_of(st.none(), st.lists(prefix_st, min_size=1, max_size=2)),
                    st.one_of(st.none(), st.integers(1, 200)),
                    st.sampled_from(["key", "open"]))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    loop = asyncio.new_event_loop()
    clock = ManualClock()
    store = SQLiteStore(str(tmp_path_factory.mktemp("attenuation")), clock=clock)
    loop.run_until_complete(store.open())
    keys = Keys(store.keys, clock.now, Tokens(store.tokens, clock.now))
    yield loop, keys, clock
    loop.run_until_complete(store.close())
    loop.close()


async def grow(keys, clock, root, requests):
    """Mint each request from the node it names; check each outcome; return the tree."""
    nodes = [(root, None, None)]  # (principal, secret, index of the parent)
    for which, scopes, prefixes, expires_in in requests:
        parent_index = which % len(nodes)
        parent = nodes[parent_index][0]
        expires_at = None if expires_in is None else clock.now() + expires_in
        grants = tuple(Grant.parse(p) for p in prefixes) or parent.grants
        within = (ref_rights(scopes) <= ref_rights(parent.scopes) and points(grants) <= points(parent.grants)
                  and inf(expires_at if expires_at is not None else parent.expires_at) <= inf(parent.expires_at))
        try:
            created = await keys.tokens.mint(parent, "t", sorted(scopes), prefixes, expires_at)
        except Forbidden as exc:
            assert exc.details["reason"] == "beyond_caller"
            assert not within, (parent, scopes, prefixes, expires_at)
            continue
        assert within, (parent, scopes, prefixes, expires_at)
        child = await keys.authenticate(created.secret)
        assert child == principal_of(created.record)
        for ancestor in (parent, root):  # never wider than its parent, nor than its root
            assert ref_rights(child.scopes) <= ref_rights(ancestor.scopes)
            assert points(child.grants) <= points(ancestor.grants)
            assert inf(child.expires_at) <= inf(ancestor.expires_at)
        nodes.append((child, created.secret, parent_index))
    return nodes


def descends(nodes, i, from_index) -> bool:
    while i is not None:
        if i == from_index:
            return True
        i = nodes[i][2]
    return False


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(root=root_st, requests=st.lists(request_st, min_size=1, max_size=8), victim=st.integers(0, 1000))
def test_attenuation_never_widens_and_revocation_reaches_every_descendant(world, root, requests, victim):
    loop, keys, clock = world
    scopes, prefixes, expires_in, kind = root
    root_p = Principal("default" if kind == "open" else "t", frozenset(scopes),
                       None if prefixes is None else tuple(Grant.parse(p) for p in prefixes), kind,
                       None if kind == "open" else "root-key", None if expires_in is None else clock.now() + expires_in)

    async def scenario():
        nodes = await grow(keys, clock, root_p, requests)
        if len(nodes) == 1:
            return
        revoked = 1 + victim % (len(nodes) - 1)
        by = nodes[revoked][0] if victim % 2 else nodes[nodes[revoked][2]][0]  # itself, or its parent
        if by.kind != "token" and by.kind != "open" and not by.has("keys:write"):
            by = Principal(root_p.tenant, frozenset({"keys:write"}), kind="key", key_id="manager")
        await keys.tokens.revoke(by, nodes[revoked][0].key_id)
        for i, (p, secret, _) in enumerate(nodes[1:], start=1):
            refused = await keys.authenticate(secret) is None
            assert refused == descends(nodes, i, revoked), (i, revoked)

    loop.run_until_complete(scenario())
