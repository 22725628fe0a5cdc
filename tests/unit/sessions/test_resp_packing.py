"""The sidecar's check, packed in parts (``RedisSessionStore.packed_check``), against hiredis
packing the whole command: the same bytes for every kind of request, however hostile its values."""

import hiredis
import pytest

from curfew.sessions.codec import build_codec
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Limits
from curfew.sessions.resp import bulk_string, packed_arguments, packed_command
from curfew.sessions.store import CHECK_AND_TOUCH, RedisSessionStore

LIMITS = Limits(idle_seconds=900, absolute_seconds=28800, renewal_seconds=3600)
SID = session_hash(b"k" * 32, "some-session")


def store(prefix: str = "curfew:") -> RedisSessionStore:
    # Nothing is sent: the URL only has to take the lean path.
    return RedisSessionStore.from_url("redis://127.0.0.1:9/0", key_prefix=prefix, lean=True)


def whole(s: RedisSessionStore, *args: object) -> bytes:
    keys_, options = s._check_and_touch_args(SID, *args)  # type: ignore[arg-type]
    return hiredis.pack_command(("EVALSHA", CHECK_AND_TOUCH.sha, len(keys_), *keys_, *options))  # type: ignore[arg-type]


@pytest.mark.parametrize("activity", [True, False])
@pytest.mark.parametrize("create", ["0", "1", "k"])
@pytest.mark.parametrize(
    "app_id",
    [
        "plain-id",
        "é-non-ascii-\u2028",
        "with\r\nCRLF and $5\r\n a fake length",  # a bulk string is framed by its length
        "",
    ],
)
def test_the_packed_check_is_byte_for_byte_what_hiredis_packs(
    activity: bool, create: str, app_id: str
) -> None:
    s = store()
    # app_key builds the key of whatever id it is given: the grammar is app_id's to check.
    app_key = build_codec("generic", "app:").app_key(app_id)
    for policy, workload in [("shop/web", "Deployment/shop/web"), ("pölicy\0", "")]:
        for _ in range(2):  # packed afresh, then from what was kept
            assert s.packed_check(SID, LIMITS, activity, policy, workload, app_key, create) == (
                whole(s, LIMITS, activity, policy, workload, app_key, create))


def test_a_check_without_an_app_key_matches_too() -> None:
    s = store("tenant:é:")
    assert s.packed_check(SID, LIMITS, True, "p", "w", None, "1") == (
        whole(s, LIMITS, True, "p", "w", None, "1"))


def test_what_is_kept_packed_stays_bounded_across_many_policies() -> None:
    s = store()
    for n in range(500):
        s.packed_check(SID, LIMITS, True, f"policy-{n}", "w", None, "1")
    assert len(s._packed) <= 64
    assert s.packed_check(SID, LIMITS, True, "policy-3", "w", None, "1") == (
        whole(s, LIMITS, True, "policy-3", "w", None, "1"))


def test_the_parts_compose_to_hiredis_packing() -> None:
    args = ("SET", "k\r\n", 12, 1.5, "é")
    assert packed_command(5, [packed_arguments(args[:1]), bulk_string("k\r\n"),
                              packed_arguments(args[2:4]), bulk_string("é")]) == (
        hiredis.pack_command(args))  # type: ignore[arg-type]
