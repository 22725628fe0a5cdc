"""Store fixtures: the same tests run against one redis-server and a 3-master Redis Cluster."""

from collections.abc import AsyncIterator

import pytest

from curfew.sessions.store import RedisSessionStore


@pytest.fixture(params=["single", "cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RedisSessionStore]:
    s = RedisSessionStore.from_url(store_url, key_prefix="curfew:", socket_timeout=5)
    yield s
    await s.aclose()
