"""The Cluster client under concurrent use, against a real 3-master Cluster.

Stores are made with no retries, so that a request hurt by another one shows as an error
instead of being retried away (a loaded machine, or a busy sidecar, can run out of retries),
except where the store's own retry after a closed connection is what is tested.
"""

import asyncio

from redis.asyncio import Redis

from curfew.sessions import keys
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision, Limits
from curfew.sessions.store import RedisSessionStore

KEY = b"test-session-key-0123456789"
LIMITS = Limits(idle_seconds=15 * 60, absolute_seconds=8 * 3600, renewal_seconds=3600)


def cluster_store(url: str) -> RedisSessionStore:
    return RedisSessionStore.from_url(
        url, key_prefix="curfew:", socket_timeout=5, connect_timeout=5, retries=0
    )


async def check(store: RedisSessionStore, sid: str) -> Decision:
    verdict = await store.check_and_touch(
        sid, LIMITS, activity=True, policy="shop/storefront", workload="Deployment/shop/web",
        register=True,  # sessions the app issued: a first sight creates the record
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


async def test_requests_after_the_server_closed_the_idle_connections_all_succeed(
    redis_cluster_url: str,
) -> None:
    # A Redis restart, its idle ``timeout`` or a CLIENT KILL closes a node's idle connections
    # under the client. redis-py (8.2 and newer, pyproject's floor) marks the node's other idle
    # connections for a lazy reconnect when a command meets a closed one, so the store's own
    # retry succeeds; before 8.2 it closed them in background tasks while they were still free,
    # and a request beside the failed one could take one mid-close and fail.
    store = RedisSessionStore.from_url(
        redis_cluster_url, key_prefix="curfew:", socket_timeout=5, connect_timeout=5
    )
    try:
        sid = session_hash(KEY, "beside-an-error")
        await store.ping()
        # 20 concurrent requests leave 20 idle connections in the node's pool.
        await asyncio.gather(*(check(store, sid) for _ in range(20)))
        node = store.client.get_node_from_key(keys.record_key(store.namespace, sid))
        for _ in range(5):
            killer = Redis(host=node.host, port=node.port)
            try:
                killed = await killer.client_kill_filter(_type="normal", skipme=True)
            finally:
                await killer.aclose()
            assert killed >= 1
            outcomes = await asyncio.gather(
                *(check(store, sid) for _ in range(20)), return_exceptions=True
            )
            assert [o for o in outcomes if isinstance(o, BaseException)] == []
            assert outcomes == [Decision.ALLOWED] * 20
    finally:
        await store.aclose()
