"""The Spring removal's keys and arguments, built from the fields read (no Redis here; the
script itself runs against real Redis in tests/integration)."""

from __future__ import annotations

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
    )
    n = len(spring.FIELDS)
    assert removal.args[0] == n
    guards = removal.args[1 : 1 + 2 * n]
    assert guards[0::2] == spring.FIELDS
    assert guards[1::2] == tuple(b"+" + f if f is not None else b"-" for f in fields)
    assert removal.args[1 + 2 * n :] == (
        jdk.write_string(ID), jdk.write_string("expires:" + ID), jdk.write_string(ID))


def test_a_session_without_times_or_principal_names_only_its_own_keys() -> None:
    removal = spring.build_removal(NS, ID, [None, None, None, None, None])
    assert len(removal.keys) == 3, "no minute set and no index can be named"
    assert removal.args[-1] == jdk.write_string(ID)


def test_a_json_serialized_session_gets_json_members() -> None:
    removal = spring.build_removal(NS, ID, [b"1000", b"2000", b"1800", b'"ann"', None])
    assert removal.args[-3:] == (f'"{ID}"'.encode(), f'"expires:{ID}"'.encode(),
                                 f'"{ID}"'.encode())


def test_a_lone_surrogate_in_a_principal_is_a_question_mark_in_the_key_as_in_java() -> None:
    assert keys.spring_principal_index_key_bytes(NS, "x\ud83d").endswith(b":x?")
    assert keys.spring_principal_index_key_bytes(NS, "\U0001F600").endswith(
        "\U0001F600".encode())
