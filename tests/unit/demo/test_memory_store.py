"""The demo's embedded store decides as the Redis store does: new, allowed, idle and absolute
expiry, tombstones that keep answering, status checks that never count as activity."""

from __future__ import annotations

from curfew.sessions.lifetime import Decision, Limits
from curfew.sessions.memory import MemoryStore

LIMITS = Limits(idle_seconds=30, absolute_seconds=180)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


async def check(store: MemoryStore, *, activity: bool = True) -> Decision:
    verdict = await store.check_and_touch("sid", LIMITS, activity=activity, policy="demo/p",
                                          workload="Deployment/demo/app")
    return verdict.decision


async def issue(store: MemoryStore) -> Decision:
    """The demo app issues the session through the sidecar, which registers it."""
    verdict = await store.register("sid", LIMITS, policy="demo/p", workload="Deployment/demo/app")
    return verdict.decision


async def test_a_session_the_app_never_issued_is_unknown_and_leaves_nothing() -> None:
    store = MemoryStore(namespace="n", clock=Clock())
    assert await check(store) is Decision.UNKNOWN
    assert await store.read_records(["sid"]) == [None]


async def test_an_issued_session_gets_its_record_and_later_requests_are_allowed() -> None:
    clock = Clock()
    store = MemoryStore(namespace="curfew:demo:", clock=clock)
    assert await issue(store) is Decision.NEW
    clock.ms += 10_000
    verdict = await store.check_and_touch("sid", LIMITS, activity=True, policy="p", workload="w")
    assert verdict.decision is Decision.ALLOWED
    assert verdict.idle_remaining == 30
    assert verdict.absolute_remaining == 170


async def test_a_status_check_does_not_extend_the_idle_timer() -> None:
    clock = Clock()
    store = MemoryStore(namespace="n", clock=clock)
    await issue(store)
    for _ in range(5):
        clock.ms += 5_000
        assert await check(store, activity=False) is Decision.ALLOWED
    clock.ms += 5_000
    assert await check(store, activity=False) is Decision.EXPIRED_IDLE


async def test_activity_keeps_the_session_until_the_absolute_limit() -> None:
    clock = Clock()
    store = MemoryStore(namespace="n", clock=clock)
    await issue(store)
    for _ in range(8):
        clock.ms += 20_000
        assert await check(store) is Decision.ALLOWED
    clock.ms += 20_000
    assert await check(store) is Decision.EXPIRED_ABSOLUTE


async def test_an_expired_session_stays_expired_even_when_used_again() -> None:
    clock = Clock()
    store = MemoryStore(namespace="n", clock=clock)
    await issue(store)
    clock.ms += 31_000
    assert await check(store) is Decision.EXPIRED_IDLE
    clock.ms += 1_000
    assert await check(store) is Decision.EXPIRED_IDLE


async def test_expire_turns_a_live_session_into_a_tombstone_with_its_reason() -> None:
    clock = Clock()
    store = MemoryStore(namespace="n", clock=clock)
    await issue(store)
    await store.expire("sid", reason=Decision.EXPIRED_ABSOLUTE)
    (record,) = await store.read_records(["sid"])
    assert record is not None
    assert record.expired is Decision.EXPIRED_ABSOLUTE
    assert await check(store) is Decision.EXPIRED_ABSOLUTE


async def test_records_are_forgotten_once_their_retention_has_passed() -> None:
    clock = Clock()
    store = MemoryStore(namespace="n", clock=clock, retain_seconds=60)
    await issue(store)
    clock.ms += 31_000 + 61_000
    # Long gone, as Redis would have dropped it: a returning cookie is a stranger's.
    assert await check(store) is Decision.UNKNOWN
