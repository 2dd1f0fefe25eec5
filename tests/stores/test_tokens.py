"""Capability tokens on both stores: the token engine over a real SQLite file and a real PostgreSQL."""

import asyncio
import hashlib
import re

import pytest

from stigmer.engine.access import Principal
from stigmer.engine.errors import Forbidden, InvalidArgument, NotFound
from stigmer.engine.keys import Keys
from stigmer.engine.tokens import Tokens

T = "t1"
SECRET = re.compile(r"as_cap_[A-Za-z0-9]{40}")


@pytest.fixture
def keys(store, clock):
    return Keys(store.keys, clock.now, Tokens(store.tokens, clock.now))


@pytest.fixture
def tokens(keys):
    return keys.tokens


async def key_principal(keys, scopes=("read", "write", "watch"), prefixes=(), tenant=T, **kw):
    created = await keys.create(tenant, scopes, prefixes, **kw)
    p = await keys.authenticate(created.secret)
    assert p is not None and p.kind == "key"
    return p


async def settle(tokens):
    """Wait for the last-use writes the engine scheduled (they never hold up a request)."""
    while tokens._pending:
        await asyncio.gather(*list(tokens._pending))


async def test_a_minted_token_authenticates_as_itself_and_is_stored_only_as_a_digest(keys, tokens, clock, store):
    key = await key_principal(keys)
    created = await tokens.mint(key, "worker", ["state:write", "read", "state:read", "read"], ["app/agents/"],
                                expires_at=clock.now() + 60)
    r = created.record
    assert SECRET.fullmatch(created.secret) and r.key_prefix == created.secret[:12]
    assert r.digest == hashlib.sha256(created.secret.encode()).digest()
    assert r.scopes == ("read", "state:read", "state:write") and r.prefixes == ("app/agents/",)
    assert (r.tenant, r.parent_id, r.lineage, r.key_id, r.created_at) == (T, None, r.id + "/", key.key_id, clock.now())
    assert len(r.id) == 21
    p = await keys.authenticate(created.secret)
    assert (p.tenant, p.kind, p.key_id, p.scopes, p.expires_at) == (
        T, "token", r.id, frozenset(r.scopes), clock.now() + 60)
    assert [str(g) for g in p.grants] == ["app/agents/"]
    assert await keys.authenticate(created.secret[:-1] + ("a" if created.secret[-1] != "a" else "b")) is None
    stored = await store.tokens.get(T, r.id)
    assert created.secret not in repr(stored)
    clock.advance(60)
    assert await keys.authenticate(created.secret) is None  # expired


async def test_a_token_is_never_wider_than_what_mints_it(keys, tokens, clock):
    key = await key_principal(keys, ("read", "write"), ["app/a"], expires_at=clock.now() + 100)
    for scopes, prefixes, expires in ((["watch"], [], None), (["state:watch"], [], None), (["read"], ["other/"], None),
                                      (["read"], ["app"], None), (["read"], [], clock.now() + 101)):
        with pytest.raises(Forbidden) as e:
            await tokens.mint(key, "x", scopes, prefixes, expires)
        assert e.value.details["reason"] == "beyond_caller", (scopes, prefixes, expires)
    inherited = (await tokens.mint(key, "x", ["state:read"])).record
    assert inherited.prefixes == ("app/a",) and inherited.expires_at == clock.now() + 100
    child = await tokens.mint(key, "child", ["state:read", "claim:write"], ["app/a/"], clock.now() + 10)
    child_p = await keys.authenticate(child.secret)
    grandchild = await tokens.mint(child_p, "grandchild", ["state:read"])
    g = grandchild.record
    assert (g.parent_id, g.lineage, g.key_id) == (child.record.id, child.record.id + "/" + g.id + "/", key.key_id)
    assert g.prefixes == ("app/a/",) and g.expires_at == clock.now() + 10
    with pytest.raises(Forbidden):
        await tokens.mint(child_p, "wider", ["read"])  # state:read does not give native read
    with pytest.raises(Forbidden):
        await tokens.mint(child_p, "wider", ["state:read"], ["app/a"])


async def test_scopes_and_names_are_checked(keys, tokens):
    key = await key_principal(keys, ("admin",))
    for scopes in ([], ["admin"], ["keys:write"], ["*"], ["state:*"], ["conversations:read"], "read"):
        with pytest.raises(InvalidArgument):
            await tokens.mint(key, "x", scopes)
    for name in ("", "n" * 256, 7):
        with pytest.raises(InvalidArgument):
            await tokens.mint(key, name, ["read"])
    assert (await tokens.mint(key, "n" * 255, ["state:read"])).record.scopes == ("state:read",)
    with pytest.raises(Forbidden):
        await tokens.mint(Principal(T, frozenset({"read"}), kind="statevec"), "x", ["read"])


async def test_revoking_a_token_refuses_every_descendant_at_once_and_no_other(keys, tokens, store):
    key = await key_principal(keys)
    root = await tokens.mint(key, "root", ["read", "write"])
    a = await tokens.mint(await keys.authenticate(root.secret), "a", ["read"])
    a1 = await tokens.mint(await keys.authenticate(a.secret), "a1", ["state:read"])
    b = await tokens.mint(await keys.authenticate(root.secret), "b", ["write"])
    other_root = await tokens.mint(key, "other", ["read"])
    revoked = await tokens.revoke(await keys.authenticate(root.secret), a.record.id)  # an ancestor revokes
    assert revoked.revoked_at is not None and revoked.id == a.record.id
    assert await keys.authenticate(a.secret) is None and await keys.authenticate(a1.secret) is None
    for alive in (root, b, other_root):
        assert await keys.authenticate(alive.secret) is not None
    again = await tokens.revoke(key, a.record.id)  # idempotent: the first revocation time stays
    assert again.revoked_at == revoked.revoked_at
    await tokens.revoke(key, root.record.id)
    assert [await keys.authenticate(t.secret) for t in (root, b)] == [None, None]
    assert [r.name for r in await tokens.list(T)] == ["other"]
    assert (await store.tokens.get(T, a1.record.id)).revoked_at is not None


async def test_who_may_revoke(keys, tokens):
    owner = await key_principal(keys)
    other_key = await key_principal(keys)
    manager = await key_principal(keys, ("keys:write",))
    t = await tokens.mint(owner, "t", ["read"])
    sibling = await tokens.mint(owner, "s", ["read"])
    with pytest.raises(Forbidden):
        await tokens.revoke(other_key, t.record.id)
    with pytest.raises(Forbidden):
        await tokens.revoke(await keys.authenticate(sibling.secret), t.record.id)
    child = await tokens.mint(await keys.authenticate(t.secret), "c", ["read"])
    with pytest.raises(Forbidden):  # a child may not revoke its parent
        await tokens.revoke(await keys.authenticate(child.secret), t.record.id)
    with pytest.raises(NotFound):  # another tenant's token does not exist for this one
        await tokens.revoke(await key_principal(keys, ("admin",), tenant="t2"), t.record.id)
    with pytest.raises(NotFound):
        await tokens.revoke(owner, "no-such-token")
    await tokens.revoke(await keys.authenticate(child.secret), child.record.id)  # itself
    await tokens.revoke(manager, sibling.record.id)
    await tokens.revoke(owner, t.record.id)
    assert await tokens.list(T) == []


async def test_revoking_the_root_key_refuses_its_tokens(keys, tokens):
    key = await key_principal(keys)
    t = await tokens.mint(key, "t", ["read"])
    child = await tokens.mint(await keys.authenticate(t.secret), "c", ["read"])
    await keys.revoke(key.key_id)
    assert await keys.authenticate(t.secret) is None and await keys.authenticate(child.secret) is None


async def test_open_mode_tokens_and_past_expiry(keys, tokens, clock):
    open_p = Principal("default", frozenset({"*"}), kind="open")
    t = await tokens.mint(open_p, "open", ["state:read", "state:write", "claim:read"])
    assert t.record.key_id is None and t.record.tenant == "default"
    assert await keys.open_mode()  # still no key: tokens are authenticated all the same
    assert (await keys.authenticate(t.secret)).scopes == frozenset({"state:read", "state:write", "claim:read"})
    clock.advance(1)
    dead = await tokens.mint(open_p, "dead", ["state:read"], expires_at=clock.now() - 1)
    assert await keys.authenticate(dead.secret) is None
    assert [r.name for r in await tokens.list("default")] == ["open", "dead"]  # expired ones are listed
    await tokens.revoke(open_p, dead.record.id)


async def test_last_use_is_recorded_at_most_every_five_seconds(keys, tokens, clock, store):
    key = await key_principal(keys)
    t = await tokens.mint(key, "t", ["read"])
    assert t.record.last_used_at is None
    first = clock.now()
    await keys.authenticate(t.secret)
    await settle(tokens)
    assert (await store.tokens.get(T, t.record.id)).last_used_at == first
    clock.advance(4.9)
    await keys.authenticate(t.secret)
    await settle(tokens)
    assert (await store.tokens.get(T, t.record.id)).last_used_at == first
    clock.advance(0.1)
    await keys.authenticate(t.secret)
    await settle(tokens)
    assert (await store.tokens.get(T, t.record.id)).last_used_at == first + 5


async def test_children_minted_while_the_parent_is_revoked_never_outlive_it(keys, tokens):
    """Mints race a revocation: every child is either refused at mint or refused when used."""
    key = await key_principal(keys)
    for _ in range(3):
        parent = await tokens.mint(key, "parent", ["read", "write"])
        parent_p = await keys.authenticate(parent.secret)

        async def mint_child(i):
            try:
                return await tokens.mint(parent_p, f"child-{i}", ["read"])
            except Forbidden as exc:
                assert exc.details["reason"] == "parent_revoked"
                return None

        results = await asyncio.gather(*(mint_child(i) for i in range(8)), tokens.revoke(key, parent.record.id),
                                       *(mint_child(i) for i in range(8, 16)))
        children = [c for c in results[:8] + results[9:] if c is not None]
        for c in children:
            assert await keys.authenticate(c.secret) is None, c.record.name


async def test_keys_take_fine_scopes_and_the_agentstate_format(keys):
    created = await keys.create(T, ["state:read", "claim:*"], secret_format="agentstate")
    assert re.fullmatch(r"as_live_[A-Za-z0-9]{40}", created.secret)
    p = await keys.authenticate(created.secret)
    assert p.has("state:read") and p.has("claim:write") and not p.has("read") and not p.has("state:write")
    with pytest.raises(InvalidArgument):
        await keys.create(T, ["state:fly"])
    with pytest.raises(InvalidArgument):
        await keys.create(T, ["read"], secret_format="other")
