"""Purge fixtures: the same tests run against one redis-server and a 3-master Redis Cluster."""

import pytest


@pytest.fixture(params=["single", "cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    url: str = request.getfixturevalue(name)
    return url
