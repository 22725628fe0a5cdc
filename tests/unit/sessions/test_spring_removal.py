"""The Spring removal's keys and arguments, built from the fields read (no Redis here; the
script itself runs against real Redis in tests/integration)."""

from __future__ import annotations

import pytest

from curfew.sessions import jdk, keys, spring
from curfew.sessions.formats import expirations_minute_ms

NS = "spring:session:"
ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
LONG_HEAD = bytes.fromhex(
    "aced00057372000e6a6176612e6c616e672e4c6f6e673b8be490cc8f23df0200014a000576616c7565787200"
    "106a6176612e6c616e672e4e756d62657286ac951d0b94e08b0200007870")
INT_HEAD = bytes.fromhex(
    "aced0005737200116a6176612e6c616e672e496e746567657212e2a0a4f78187380200014900057661"
    "6c7565787200106a6176612e6c616e672e4e756d62657286ac951d0b94e08b0200007870")


def jlong(n: int) -> bytes:
    return LONG_HEAD + n.to_bytes(8, "big", signed=True)


def jint(n: int) -> bytes:
    return INT_HEAD + n.to_bytes(4, "big", signed=True)


def ops(removal: spring.Removal) -> list[tuple[str, tuple[bytes, ...]]]:
    """The (operation, members) the script is given for each companion key, in order."""
    rest = list(removal.args[1 + 2 * len(spring.FIELDS):])
    found = []
    while rest:
        op, count = rest[0], rest[1]
        assert isinstance(op, str)
        assert isinstance(count, int)
        found.append((op, tuple(rest[2 : 2 + count])))
        rest = rest[2 + count:]
    return found


def test_every_field_is_guarded_and_every_companion_key_named() -> None:
    fields = [jlong(1_000), jlong(1_765_000_000_123), jint(1800), jdk.write_string("ann\x00"),
              None]
    removal = spring.build_removal(NS, ID, fields)
    minute = expirations_minute_ms(1_765_000_000_123, 1800)
    assert minute == 1_765_001_820_000, "the minute after the expiry (Spring's roundUpToNextMinute)"
    assert removal.keys == (
        f"{NS}sessions:{ID}".encode(), f"{NS}sessions:expires:{ID}".encode(),
        f"{NS}sessions:expirations".encode(), f"{NS}expirations:{minute}".encode(),
        keys.spring_principal_index_key_bytes(NS, "ann\x00"),
        f"{NS}sessions:{ID}:idx".encode(),
    )
    n = len(spring.FIELDS)
    assert removal.args[0] == n
    guards = removal.args[1 : 1 + 2 * n]
    assert guards[0::2] == spring.FIELDS
    assert guards[1::2] == tuple(b"+" + f if f is not None else b"-" for f in fields)
    assert ops(removal) == [
        ("string", ()), ("zrem", (jdk.write_string(ID),)),
        ("srem", (jdk.write_string("expires:" + ID),)), ("srem", (jdk.write_string(ID),)),
        ("set", ()),
    ]


def test_a_session_without_times_or_principal_names_only_its_own_keys() -> None:
    removal = spring.build_removal(NS, ID, [None, None, None, None, None])
    assert len(removal.keys) == 4, "no minute set and no index can be named"
    assert ops(removal)[1] == ("zrem", (jdk.write_string(ID),))


def test_a_json_serialized_session_gets_json_members() -> None:
    removal = spring.build_removal(NS, ID, [b"1000", b"2000", b"1800", b'"ann"', None])
    assert [m for _, m in ops(removal)][1:4] == [
        (f'"{ID}"'.encode(),), (f'"expires:{ID}"'.encode(),), (f'"{ID}"'.encode(),)]


REACTIVE_INDEX = f"{NS}sessions:index:PRINCIPAL_NAME_INDEX_NAME:"


def test_the_reactive_index_list_names_the_index_sets_and_is_guarded() -> None:
    listed = [jdk.write_string(REACTIVE_INDEX + "ann\U0001F600"),
              jdk.write_string(f"{NS}sessions:index:tenant:acme")]
    removal = spring.build_removal(NS, ID, [jlong(1), jlong(2), jint(60), None, None], listed)
    assert removal.keys[-3:] == (
        (REACTIVE_INDEX + "ann\U0001F600").encode(), f"{NS}sessions:index:tenant:acme".encode(),
        f"{NS}sessions:{ID}:idx".encode())
    assert ops(removal)[-3:] == [("srem", (jdk.write_string(ID),)),
                                 ("srem", (jdk.write_string(ID),)), ("set", tuple(listed))]


@pytest.mark.parametrize(
    ("case", "member"),
    [
        ("a key outside the index namespace", jdk.write_string(f"{NS}sessions:{ID}")),
        ("another app's index", jdk.write_string("other:sessions:index:x:y")),
        ("the bare index head", jdk.write_string(f"{NS}sessions:index:")),
        ("bytes that are no string", b"\xac\xed\x00\x05\x74\x00"),
        ("a number", jlong(7)),
    ],
)
def test_an_index_list_member_spring_did_not_write_names_no_key(case: str, member: bytes) -> None:
    assert spring.index_keys(NS, [member]) == [], case
    removal = spring.build_removal(NS, ID, [None] * 5, [member])
    assert removal.keys[-1] == f"{NS}sessions:{ID}:idx".encode()
    assert ops(removal)[-1] == ("set", (member,)), "still guarded: the list must not change"
    assert len(removal.keys) == 4, case


def test_on_a_cluster_the_hash_goes_alone_and_the_id_named_keys_go_last() -> None:
    fields = [jlong(1), jlong(2), jint(60), jdk.write_string("ann"), None]
    listed = [jdk.write_string(REACTIVE_INDEX + "ann")]
    removal = spring.build_removal(NS, ID, fields, listed, hash_only=True)
    assert removal.keys == (f"{NS}sessions:{ID}".encode(),)
    assert ops(removal) == []
    first, last = spring.cluster_phases(removal.companions)
    assert {c.op for c in first} == {"zrem", "srem"}
    assert [(c.key, c.op) for c in last] == [
        (f"{NS}sessions:expires:{ID}".encode(), "string"),
        (f"{NS}sessions:{ID}:idx".encode(), "set"),
    ]


def test_an_orphan_known_by_its_id_alone_is_removed_in_both_serializers() -> None:
    companions = spring.build_companions(NS, ID, None)
    assert [c.op for c in companions] == ["string", "zrem", "set"]
    assert companions[1].members == (jdk.write_string(ID), f'"{ID}"'.encode())


def test_a_lone_surrogate_in_a_principal_is_a_question_mark_in_the_key_as_in_java() -> None:
    assert keys.spring_principal_index_key_bytes(NS, "x\ud83d").endswith(b":x?")
    assert keys.spring_principal_index_key_bytes(NS, "\U0001F600").endswith(
        "\U0001F600".encode())
