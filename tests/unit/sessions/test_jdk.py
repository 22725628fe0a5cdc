"""The JDK codec on its own: modified UTF-8 both ways, and hostile values read as no value.
(The bytes the JDK writes are checked against the JDK in tests/integration/sessions.)"""

from __future__ import annotations

import contextlib
import logging
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curfew.sessions import jdk

JAVA_STRINGS = st.lists(st.integers(0, 0xFFFF), max_size=64).map(
    lambda units: b"".join(u.to_bytes(2, "big") for u in units).decode("utf-16-be",
                                                                       "surrogatepass"))
"""Any Java string: any sequence of UTF-16 code units, lone surrogates included."""


@given(JAVA_STRINGS)
def test_any_java_string_survives_modified_utf8_both_ways(text: str) -> None:
    data = jdk.encode_mutf8(text)
    assert b"\x00" not in data
    assert not any(b >= 0xF0 for b in data), "no four-byte sequence: surrogates go one by one"
    assert jdk.decode_mutf8(data) == text
    assert jdk.read_string(jdk.write_string(text)) == text


@pytest.mark.parametrize(
    ("case", "text", "data"),
    [
        ("NUL is C0 80", "\x00", b"\xc0\x80"),
        ("an emoji is two three-byte surrogates", "\U0001F600", b"\xed\xa0\xbd\xed\xb8\x80"),
        ("U+D7FF is an ordinary three-byte character", "\ud7ff", b"\xed\x9f\xbf"),
        ("ASCII is itself", "abc", b"abc"),
    ],
)
def test_modified_utf8_writes_what_write_utf_writes(case: str, text: str, data: bytes) -> None:
    assert jdk.encode_mutf8(text) == data


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("a raw NUL", jdk.MAGIC + b"\x74\x00\x01\x00"),
        ("a four-byte UTF-8 sequence", jdk.MAGIC + b"\x74\x00\x04\xf0\x9f\x98\x80"),
        ("a length past the end", jdk.MAGIC + b"\x74\x00\x09abc"),
        ("bytes after the string", jdk.MAGIC + b"\x74\x00\x01ab"),
        ("a long string of a negative length", jdk.MAGIC + b"\x7c" + struct.pack(">q", -1)),
        ("no stream header", b"\x74\x00\x01a"),
        ("JSON", b'"alice"'),
        ("a Long where a String belongs", jdk.MAGIC + b"\x73\x72"),
    ],
)
def test_a_value_that_is_no_serialized_string_is_refused(case: str, value: bytes) -> None:
    with pytest.raises(jdk.NotJdk):
        jdk.read_string(value)


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("a string", jdk.write_string("12")),
        ("a truncated object", jdk.MAGIC + b"\x73\x72\x00\x0ejava.lang.Lo"),
        ("gzip behind the header", jdk.MAGIC + b"\x1f\x8b\x08\x00"),
        ("an unknown type code", jdk.MAGIC + b"\x01"),
        ("nothing but the header", jdk.MAGIC),
        ("arrays nested past the recursion limit", jdk.MAGIC + b"\x75\x72\x00\x02[[" * 3000),
    ],
)
def test_a_value_that_is_no_number_is_refused_and_never_logged(
    caplog: pytest.LogCaptureFixture, case: str, value: bytes
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(jdk.NotJdk):
        jdk.read_number(value)
    assert caplog.records == [], "the parser's dump would print the value's bytes"


@given(st.binary(max_size=200))
def test_random_bytes_behind_the_header_are_a_value_or_refused_never_an_error(
    tail: bytes,
) -> None:
    for read in (jdk.read_number, jdk.read_string, jdk.principal_of_security_context):
        with contextlib.suppress(jdk.NotJdk):
            read(jdk.MAGIC + tail)
