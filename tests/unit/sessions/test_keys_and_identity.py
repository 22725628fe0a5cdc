"""The key schema and the keyed session hash."""

import collections
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curfew.sessions import keys
from curfew.sessions.identity import (
    SessionHasher,
    SessionKeyError,
    check_session_key,
    is_session_hash,
    session_hash,
)

KEY = b"k" * 32


def test_the_session_hash_is_hex_hmac_sha256_and_depends_on_the_key() -> None:
    # RFC 4231 test case 2 pins the algorithm: HMAC-SHA-256("Jefe", "what do ya want ...").
    assert session_hash(b"Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert session_hash(KEY, "abc") != session_hash(b"x" * 32, "abc")
    assert is_session_hash(session_hash(KEY, "abc"))
    assert not is_session_hash("abc")


@given(st.binary(min_size=16, max_size=200), st.text(max_size=100))
def test_the_hasher_set_up_once_is_hmac_sha256_for_keys_of_every_length(
    key: bytes, raw_id: str
) -> None:
    expected = hmac.new(key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
    hasher = SessionHasher(key)
    assert hasher(raw_id) == expected == session_hash(key, raw_id)
    assert hasher(raw_id) == expected, "the same answer the second time"


def test_the_hasher_agrees_on_the_rfc_4231_vectors() -> None:
    # Test cases 2 and 6 (a key longer than SHA-256's 64-byte block is hashed first).
    assert SessionHasher(b"Jefe")("what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert SessionHasher(b"\xaa" * 131)(
        "Test Using Larger Than Block-Size Key - Hash Key First") == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_a_short_session_key_is_refused() -> None:
    with pytest.raises(SessionKeyError, match="at least 16 bytes"):
        check_session_key(b"short")


def test_a_record_and_its_index_share_one_hash_tag() -> None:
    sid = session_hash(KEY, "cookie-value")
    record, due, limits = keys.session_keys("curfew:", sid)
    tag = record[record.index("{") : record.index("}") + 1]
    assert due.startswith(f"curfew:{tag}")
    assert limits.startswith(f"curfew:{tag}")
    assert record == f"curfew:{tag}:r:{sid}"


def test_session_hashes_spread_evenly_over_the_shards() -> None:
    counts = collections.Counter(
        keys.shard_of(session_hash(KEY, str(i))) for i in range(64_000)
    )
    assert len(counts) == keys.SHARDS
    assert max(counts.values()) < 1.2 * 64_000 / keys.SHARDS


@pytest.mark.parametrize(
    ("fmt", "prefix", "expected"),
    [
        ("spring-session", "spring:session:", "spring:session:sessions:abc"),
        ("connect-redis", "sess:", "sess:abc"),
        ("generic", "session:", "session:abc"),
        ("curfew", "curfew:", None),
    ],
)
def test_the_app_session_key_follows_each_library(
    fmt: str, prefix: str, expected: str | None
) -> None:
    assert keys.app_session_key(fmt, prefix, "abc") == expected
    if expected is not None:
        assert keys.app_raw_id(fmt, prefix, expected) == "abc"


def test_curfew_keeps_its_records_out_of_an_app_keyspace() -> None:
    assert keys.curfew_namespace("curfew", "curfew:") == "curfew:"
    assert keys.curfew_namespace("connect-redis", "sess:") == "curfew:sess:"


def test_spring_expiry_keys_are_not_taken_for_sessions() -> None:
    prefix = "spring:session:"
    assert keys.app_raw_id("spring-session", prefix, prefix + "sessions:expires:abc") is None
    assert keys.app_scan_pattern("spring-session", prefix) == "spring:session:sessions:*"
    assert keys.app_scan_pattern("generic", "a*b:") == "a\\*b:*"


def test_an_owner_id_is_twelve_hex_characters_of_sha256_over_policy_nul_workload() -> None:
    owner = keys.owner_id("shop/storefront", "Deployment/shop/web")
    assert owner == "bbdb165fce72"
    assert len(owner) == keys.OWNER_HEX_LENGTH
    assert keys.owner_id("shop/storefront", "Deployment/shop/api") != owner
    assert keys.owner_id("shop/checkout", "Deployment/shop/web") != owner


def test_a_due_member_is_the_owner_then_the_session_hash() -> None:
    sid = session_hash(KEY, "cookie-value")
    owner = keys.owner_id("shop/storefront", "Deployment/shop/web")
    member = keys.due_member(owner, sid)
    assert member == owner + sid
    assert keys.split_due_member(member) == (owner, sid)


@pytest.mark.parametrize(
    ("case", "idle_deadline", "absolute_deadline", "score"),
    [
        ("the idle deadline first: the deadline itself", 1_800_000_900_000, 1_800_028_800_000,
         1_800_000_900_000.0),
        ("the absolute deadline first: half a millisecond later", 1_800_000_900_000,
         1_800_000_300_000, 1_800_000_300_000.5),
        ("a tie names idle, as the rules do", 1_800_000_900_000, 1_800_000_900_000,
         1_800_000_900_000.0),
        ("exact in the year 2100", 4_102_444_800_001, 4_102_444_800_000, 4_102_444_800_000.5),
    ],
)
def test_the_due_score_is_the_earliest_deadline_and_marks_an_absolute_one(
    case: str, idle_deadline: int, absolute_deadline: int, score: float
) -> None:
    got = keys.due_score(idle_deadline, absolute_deadline)
    assert got == score, case
    deadline, absolute = keys.due_deadline(got)
    assert deadline == min(idle_deadline, absolute_deadline), case
    assert absolute is (absolute_deadline < idle_deadline), case
    # Read up to due_until(ms): every entry whose deadline is at or before ms, none after.
    assert got <= keys.due_until(deadline) < keys.due_score(deadline + 1, deadline + 1)
