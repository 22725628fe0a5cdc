"""The client lists in pages (``limit``/``continue``), as client-go does, so no list of thousands
of objects arrives as one body: every object is returned once, in as many requests as pages."""

from __future__ import annotations

import asyncio

from curfew.k8s.client import CONFIG_MAPS, LIST_PAGE_SIZE
from tests.integration.operator.harness import Cluster


async def test_a_list_longer_than_a_page_is_fetched_page_by_page_and_whole(
        cluster: Cluster) -> None:
    count = 2 * LIST_PAGE_SIZE + 1
    sem = asyncio.Semaphore(32)

    async def create(i: int) -> None:
        async with sem:
            await cluster.client.create(CONFIG_MAPS, "shop", {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i:04d}", "namespace": "shop",
                             "labels": {"page-test": "yes" if i % 2 else "no"}}})

    await asyncio.gather(*(create(i) for i in range(count)))
    mark = len(cluster.api.calls)
    items = await cluster.client.list(CONFIG_MAPS, "shop")
    names = [o["metadata"]["name"] for o in items]
    assert sorted(names) == [f"cm-{i:04d}" for i in range(count)]
    lists = [c for c in cluster.api.calls[mark:] if c.verb == "list"]
    assert len(lists) == 3
    # A selector applies across pages.
    selected = await cluster.client.list(CONFIG_MAPS, "shop", label_selector="page-test=yes")
    assert len(selected) == count // 2
