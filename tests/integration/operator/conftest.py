"""Fixtures of the operator's integration tests: an API emulator on loopback per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.integration.operator.harness import Cluster, running_cluster


@pytest_asyncio.fixture()
async def cluster() -> AsyncIterator[Cluster]:
    async with running_cluster() as c:
        yield c
