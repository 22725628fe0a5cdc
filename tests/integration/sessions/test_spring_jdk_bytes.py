"""Curfew's JDK codec against the JDK: every String, Long, Integer and SecurityContextImpl here is
written by ``java.io.ObjectOutputStream`` (``fixtures.apps.spring``), and what Curfew writes to
remove a set member must be the same bytes."""

from __future__ import annotations

import pytest

from curfew.sessions import jdk
from curfew.sessions.formats import read_spring_principal
from fixtures.apps.spring import SpringWriter

TEXTS = {
    "an id": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
    "an expirations member": "expires:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
    "the empty string (the shadow key's value)": "",
    "NUL, which Java writes as C0 80": "a\x00b",
    "a supplementary character, which Java writes as two surrogates": "ana\U0001F600",
    "Hangul after a NUL (U+D000 to U+D7FF follow the surrogates' lead byte)": "\x00\ud55c\uae00",
    "Hangul after an emoji": "\U0001F600\ud55c",
    "a lone high surrogate": "x\ud83d",
    "a lone low surrogate first": "\ude00y",
    "two-byte and three-byte characters": "J\u00fcrgen \u20ac \u0800 \uffff",
    "a name past 65535 bytes (TC_LONGSTRING)": "\U0001F600" * 11_000,
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_a_string_is_written_byte_for_byte_as_object_output_stream_writes_it_and_read_back(
    spring_writer: SpringWriter, text: str
) -> None:
    (java,) = spring_writer.string(text)
    assert jdk.write_string(text) == java
    assert jdk.read_string(java) == text


def test_longs_and_integers_read_as_the_jdk_wrote_them_at_their_extremes(
    spring_writer: SpringWriter,
) -> None:
    values = [("long", 0), ("long", -1), ("long", 2**63 - 1), ("long", -(2**63)),
              ("long", 1_765_000_000_123), ("int", 0), ("int", -1), ("int", 2**31 - 1),
              ("int", -(2**31)), ("int", 1800)]
    written = spring_writer.numbers(*values)
    assert [jdk.read_number(b) for b in written] == [n for _, n in values]
    # The second read of each class takes the learnt prefix: the same values again.
    assert [jdk.read_number(b) for b in written] == [n for _, n in values]


NAMES = {
    "a plain name": "alice",
    "a name with NUL": "ali\x00ce",
    "a name with an emoji": "bob\U0001F600",
    "a Hangul name": "\ud55c\uae00",
}


@pytest.mark.parametrize("kind", ["string", "user"])
@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_the_principal_is_read_from_spring_securitys_context_as_the_index_resolver_reads_it(
    spring_writer: SpringWriter, kind: str, name: str
) -> None:
    context = spring_writer.context(kind, name)
    assert read_spring_principal(None, context) == name


def test_the_explicit_principal_attribute_comes_before_the_security_context(
    spring_writer: SpringWriter,
) -> None:
    (explicit,) = spring_writer.string("carol\U0001F600\x00")
    context = spring_writer.context("user", "dave")
    assert read_spring_principal(explicit, context) == "carol\U0001F600\x00"


def test_a_truncated_security_context_names_no_principal(spring_writer: SpringWriter) -> None:
    context = spring_writer.context("user", "erin")
    for cut in (5, len(context) // 2, len(context) - 1):
        assert read_spring_principal(None, context[:cut]) is None


def test_a_security_context_with_bytes_after_it_names_no_principal(
    spring_writer: SpringWriter,
) -> None:
    context = spring_writer.context("string", "frank")
    assert read_spring_principal(None, context) == "frank"
    assert read_spring_principal(None, context + b"\x70") is None
