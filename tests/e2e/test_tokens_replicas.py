"""Capability tokens across two real `stigmer serve` processes on one PostgreSQL database: a token minted
on one replica works on the other, and revoking a parent on replica A refuses its children on replica B
from the very next request (no replica caches token rows). Through the SDK, sync and async.

Needs PostgreSQL (127.0.0.1:5432 by default); without one these tests skip with the reason printed, and
fail instead under TEST_REQUIRE_POSTGRES (CI sets it when PostgreSQL answers).
"""

from __future__ import annotations

import os

import pytest

from pg_support import new_database, postgres_url
from stigmer.client import AsyncClient, Client, ForbiddenError, Retry, UnauthenticatedError
from support import ADMIN_KEY

NO_RETRY = Retry(retries=0)


@pytest.fixture
def pair(make_server, tmp_path):
    postgres_url()
    url = new_database(f"stigmer_{tmp_path.name}_{os.getpid()}".lower())
    started = [make_server(database_url=url, admin_key=ADMIN_KEY) for _ in range(2)]
    for s in started:
        s.data_dir.mkdir()
        s.start()
    return started


def test_revoking_a_parent_on_one_replica_refuses_its_children_on_the_other_at_once(pair, ns):
    a, b = pair
    with Client(a.url, api_key=ADMIN_KEY, retry=NO_RETRY) as admin_a:
        for round_ in range(5):
            parent = admin_a.mint_token(f"parent-{round_}", ["read", "write"], prefixes=[ns])
            with Client(b.url, api_key=parent.secret, retry=NO_RETRY) as parent_b:
                child = parent_b.mint_token("child", ["read", "write"])  # minted on B, from a token minted on A
            assert child.token.parent_id == parent.token.id and child.token.prefixes == [ns]
            with Client(b.url, api_key=child.secret, retry=NO_RETRY) as child_b, \
                    Client(a.url, api_key=child.secret, retry=NO_RETRY) as child_a:
                grandchild = child_b.mint_token("grandchild", ["read"])
                child_b.put(ns, "k", round_)
                assert child_a.get(ns, "k").value == round_ and child_b.get(ns, "k").value == round_
                with pytest.raises(ForbiddenError):
                    child_b.put("elsewhere", "k", 1)
                admin_a.revoke_token(parent.token.id)  # on A ...
                with pytest.raises(UnauthenticatedError):
                    child_b.get(ns, "k")  # ... the very next request on B is refused
                with pytest.raises(UnauthenticatedError):
                    child_a.get(ns, "k")
            with Client(b.url, api_key=grandchild.secret, retry=NO_RETRY) as grandchild_b:
                with pytest.raises(UnauthenticatedError):
                    grandchild_b.get(ns, "k")
        assert [t.name for t in admin_a.list_tokens()] == []


async def test_the_async_client_mints_lists_and_revokes_across_replicas(pair, ns):
    a, b = pair
    async with AsyncClient(a.url, api_key=ADMIN_KEY, retry=NO_RETRY) as admin_a, \
            AsyncClient(b.url, api_key=ADMIN_KEY, retry=NO_RETRY) as admin_b:
        made = await admin_a.mint_token("async", ["state:read", "read"], expires_in=3600)
        assert made.token.active and made.token.expires_at is not None and made.secret.startswith("as_cap_")
        assert [t.id for t in await admin_b.list_tokens()] == [made.token.id]
        async with AsyncClient(a.url, api_key=made.secret, retry=NO_RETRY) as token_a:
            await token_a.revision()
            gone = await admin_b.revoke_token(made.token.id)
            assert gone.revoked_at is not None and not gone.active
            with pytest.raises(UnauthenticatedError):
                await token_a.revision()
        assert await admin_a.list_tokens() == []
