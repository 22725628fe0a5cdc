"""The Cluster client under concurrent use, against a real 3-master Cluster.

Every store here is made with no retries, so that a request hurt by another one shows as an
error instead of being retried away (a loaded machine, or a busy sidecar, can run out of
retries).
"""

import asyncio

from curfew.sessions import keys
from curfew.sessions.identity import session_hash
from curfew.sessions.rules import Decision, Limits
from curfew.sessions.store import SessionStore

KEY = b"test-session-key-0123456789"
LIMITS = Limits(idle_seconds=15 * 60, absolute_seconds=8 * 3600, renewal_seconds=3600)


def cluster_store(url: str) -> SessionStore:
    return SessionStore.from_url(
        url, key_prefix="curfew:", socket_timeout=5, connect_timeout=5, retries=0
    )


async def check(store: SessionStore, sid: str) -> Decision:
    verdict = await store.check_and_touch(
        sid, LIMITS, activity=True, policy="shop/storefront", workload="Deployment/shop/web"
    )
    return verdict.decision


async def test_concurrent_first_requests_on_a_new_client_all_succeed(
    redis_cluster_url: str,
) -> None:
    # A new client knows no slots yet: requests must wait for it to learn them rather than be
    # sent anywhere and MOVED (redis-py closes every connection, in use or not, after a few).
    for attempt in range(5):
        store = cluster_store(redis_cluster_url)
        try:
            sid = session_hash(KEY, f"cold-{attempt}")
            outcomes = await asyncio.gather(
                *(check(store, sid) for _ in range(20)), return_exceptions=True
            )
        finally:
            await store.aclose()
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        assert outcomes.count(Decision.NEW) == 1


async def test_idle_connections_closed_after_an_error_never_fail_the_requests_beside_it(
    redis_cluster_url: str,
) -> None:
    store = cluster_store(redis_cluster_url)
    try:
        sid = session_hash(KEY, "beside-an-error")
        await store.ping()
        # 20 concurrent requests leave 20 idle connections in the node's pool.
        await asyncio.gather(*(check(store, sid) for _ in range(20)))
        node = store.client.get_node_from_key(keys.record_key(store.namespace, sid))
        for _ in range(10):
            # What redis-py does to a node's idle connections after a topology change (before
            # 8.2, after every connection error too, and a request beside it could take one
            # mid-close: the reason for pyproject's redis>=8.2 floor). The event itself cannot
            # be timed to land between two requests.
            outcomes = await asyncio.gather(
                node.disconnect_free_connections(),
                *(check(store, sid) for _ in range(20)),
                return_exceptions=True,
            )
            assert [o for o in outcomes if isinstance(o, BaseException)] == []
            assert outcomes[1:] == [Decision.ALLOWED] * 20
    finally:
        await store.aclose()
