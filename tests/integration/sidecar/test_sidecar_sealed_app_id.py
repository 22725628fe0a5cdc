"""The sidecar seals the app's session id into a record it creates, on first sight only, so the
purge can reach the app's session from the due index; the steady state stays one call."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from sidecar_harness import KEY, StartSidecar, policy_doc, sid_of, wait_for

from curfew.sessions import keys
from curfew.sessions.identity import AppIdSeal
from fixtures.purge import curfew_purge, purge_config, write_config
from fixtures.sessions import MIN

SPRING = "spring:session:"
API = {"Accept": "application/json"}


def spring_store() -> dict[str, object]:
    return {"format": "spring-session", "keyPrefix": SPRING,
            "redisSecretRef": {"name": "r", "key": "url"},
            "sessionKeySecretRef": {"name": "r", "key": "k"}}


async def commands(client: Any) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name: int(v["calls"]) for name, v in stats.items()}


async def test_a_first_sight_seals_the_app_id_and_the_purge_removes_the_session_by_it(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, tmp_path: Path, redis_url: str
) -> None:
    running = await start_sidecar(policy_doc(
        session={"cookieName": "SESSION"}, store=spring_store()))
    client = running.store.client
    app_id = str(uuid.uuid4())
    app_key = f"{SPRING}sessions:{app_id}"
    now = await running.store.server_time_ms()
    # The app's session, as Spring Session's JSON serializers write it.
    await client.hset(app_key, mapping={"creationTime": now, "lastAccessedTime": now,
                                        "maxInactiveInterval": 1800})
    cookie = {"Cookie": "SESSION=" + base64.b64encode(app_id.encode()).decode(), **API}
    async with http.get(running.url + "/x", headers=cookie) as r:
        assert r.status == 200
    await wait_for(lambda: _sealed(running.record(app_id)))
    record = await running.record(app_id)
    assert app_id not in "".join(record.values())
    assert AppIdSeal(KEY).open(sid_of(app_id), record["s"]) == app_id

    # The steady state: one EVALSHA per request, nothing else.
    before = await commands(client)
    async with http.get(running.url + "/x", headers=cookie) as r:
        assert r.status == 200
    after = await commands(client)
    delta = {name: after[name] - before.get(name, 0) for name in after
             if after[name] != before.get(name, 0)}
    assert delta.pop("cmdstat_evalsha") == 1
    assert delta.pop("cmdstat_info", 0) <= 1  # the test's own first INFO
    assert set(delta) <= {"cmdstat_time", "cmdstat_hmget", "cmdstat_hset", "cmdstat_zadd",
                          "cmdstat_pexpireat"}, delta  # what the script runs inside it

    # The user leaves; the purge, walking nothing, finds the session through the index.
    record_key, due, _ = keys.session_keys(running.store.namespace, sid_of(app_id))
    last = now - 20 * MIN
    await client.hset(record_key, mapping={"l": last, "c": last})
    await client.zadd(due, {record["o"] + sid_of(app_id): last + 15 * MIN})
    await client.hset(app_key, "lastAccessedTime", last)
    config = write_config(tmp_path, purge_config(format="spring-session", key_prefix=SPRING,
                                                 app_walk="IndexOnly", max_fraction=1.0))
    run = curfew_purge(config, redis_url, session_key=KEY.decode())
    assert run.code == 0, run.stderr
    assert run.summary["expired"]["idle"] == 1
    assert await client.exists(app_key) == 0


async def _sealed(record: Any) -> bool:
    return "s" in await record

