"""Java serialization as Spring Session's default ``JdkSerializationRedisSerializer`` writes it
(``java.io.ObjectOutputStream``): reading hash values and writing set members, byte for byte.

Objects (``java.lang.Long``, ``java.lang.Integer``, a ``SecurityContextImpl`` graph) are read by
javaobj-py3, a parser of the stream format that never loads or runs a class. Strings are decoded
and written here (inside javaobj's reader too), in modified UTF-8 (``DataOutput.writeUTF``: NUL
as ``C0 80``, a supplementary character as its two UTF-16 surrogates of three bytes each, a lone
surrogate as itself): javaobj-py3 0.6.1's decoder rejects U+D000 to U+D7FF (Hangul syllables,
among others) after a ``C0 80`` or a surrogate pair, and lone surrogates, all of which Java
writes; and its writer writes standard UTF-8. Removing a set member needs the member's exact
bytes, so the writer is checked against the JDK's own output by the tests.

Pure: bytes in, values out; never executes anything.
"""

from __future__ import annotations

import io
import logging
import struct
from typing import Any, Final

from javaobj.v1.transformers import DefaultObjectTransformer
from javaobj.v1.unmarshaller import JavaObjectUnmarshaller

MAGIC: Final = b"\xac\xed\x00\x05"
_TC_STRING: Final = 0x74
_TC_LONGSTRING: Final = 0x7C
_MAX_SHORT_UTF: Final = 0xFFFF
_LONG: Final = "java.lang.Long"
_INTEGER: Final = "java.lang.Integer"

# javaobj logs a parse error with a hex dump of the stream: session attributes, principal names.
logging.getLogger("javaobj").disabled = True


class NotJdk(ValueError):
    """A value that is not what the JDK serializer writes for the type asked for."""


def encode_mutf8(text: str) -> bytes:
    """``text`` (a Java string: surrogates allowed) in modified UTF-8, as ``writeUTF`` writes it."""
    if text.isascii() and "\x00" not in text:
        return text.encode("ascii")
    units = text.encode("utf-16-be", "surrogatepass")
    # One code point per UTF-16 unit: a supplementary character becomes its two surrogates.
    chars = "".join(chr(int.from_bytes(units[i : i + 2], "big")) for i in range(0, len(units), 2))
    return chars.encode("utf-8", "surrogatepass").replace(b"\x00", b"\xc0\x80")


def decode_mutf8(data: bytes) -> str:
    """Modified UTF-8 back to the Java string (a lone surrogate stays one); raises NotJdk for
    bytes ``readUTF`` would refuse (a raw NUL, a four-byte sequence)."""
    if b"\x00" in data or any(b >= 0xF0 for b in data):
        raise NotJdk("not modified UTF-8")
    try:
        text = data.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
        # Surrogate pairs were decoded one half at a time: join them into code points.
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")
    except UnicodeError:
        raise NotJdk("not modified UTF-8") from None


def write_string(text: str) -> bytes:
    """``text`` as ``ObjectOutputStream.writeObject(String)`` writes it, stream header included."""
    data = encode_mutf8(text)
    if len(data) <= _MAX_SHORT_UTF:
        return MAGIC + bytes([_TC_STRING]) + struct.pack(">H", len(data)) + data
    return MAGIC + bytes([_TC_LONGSTRING]) + struct.pack(">q", len(data)) + data


def read_string(value: bytes) -> str:
    """A ``String`` as ``writeObject`` wrote it; raises NotJdk for anything else."""
    text = load(value)
    if not isinstance(text, str):
        raise NotJdk("not a serialized String")
    return str(text)


def load(value: bytes) -> Any:
    """The object javaobj reads from ``value``; raises NotJdk if it reads none. Any failure of
    the parser is no object: apps write these values, sometimes from what users send."""
    if not value.startswith(MAGIC):
        raise NotJdk("no Java serialization header")
    stream = _Exact(value)
    try:
        unmarshaller = _Unmarshaller(stream)  # type: ignore[no-untyped-call]
        unmarshaller.add_transformer(DefaultObjectTransformer())  # type: ignore[no-untyped-call]
        obj = unmarshaller.readObject(ignore_remaining_data=True)  # type: ignore[no-untyped-call]
    except Exception:  # a parser of hostile bytes fails in many ways
        raise NotJdk("not a Java object javaobj can read") from None
    if stream.tell() != len(value):
        raise NotJdk("bytes after the object")  # Spring writes one object per value
    return obj


class _Unmarshaller(JavaObjectUnmarshaller):
    """javaobj's reader, its strings (names and values inside objects) decoded by
    :func:`decode_mutf8`: its own decoder refuses Hangul after a NUL or an emoji."""

    def _readString(self, length_fmt: str = "H") -> str:
        (length,) = self._readStruct(">" + length_fmt)  # type: ignore[no-untyped-call]
        return decode_mutf8(self.object_stream.read(length))


class _Exact(io.BytesIO):
    """A stream that fails a read past its end: javaobj takes a short read for the whole of a
    string or array, so a truncated value would otherwise read as a shorter one."""

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if size is not None and size >= 0 and len(data) != size:
            raise NotJdk("truncated")
        return data


_NUMBER_PREFIXES: dict[bytes, int] = {}
"""Stream bytes before a Long's or Integer's value -> the value's width, learnt from javaobj: the
class descriptor is the same in every value, so javaobj parses it once per distinct prefix (the
purge reads three numbers per session, and a full parse costs about 70 us)."""


def read_number(value: bytes) -> int:
    """A ``java.lang.Long`` or ``java.lang.Integer``; raises NotJdk for anything else."""
    for width in (8, 4):
        if len(value) > width and _NUMBER_PREFIXES.get(value[:-width]) == width:
            return int.from_bytes(value[-width:], "big", signed=True)
    obj = load(value)
    name = getattr(getattr(obj, "classdesc", None), "name", None)
    number = getattr(obj, "value", None)
    if name not in (_LONG, _INTEGER) or not isinstance(number, int) or isinstance(number, bool):
        raise NotJdk("not a serialized Long or Integer")
    width = 8 if name == _LONG else 4
    if (len(_NUMBER_PREFIXES) < 16 and len(value) > width
            and int.from_bytes(value[-width:], "big", signed=True) == number):
        _NUMBER_PREFIXES[value[:-width]] = width
    return int(number)


def principal_of_security_context(value: bytes) -> str | None:
    """The principal name ``PrincipalNameIndexResolver`` indexes a session under, from its
    ``SPRING_SECURITY_CONTEXT`` attribute (``authentication?.name``), or None when it cannot be
    told: a ``SecurityContextImpl`` whose authentication's principal is a String, or an object
    with a ``username`` (Spring Security's ``User``) or ``name`` String field."""
    context = load(value)
    authentication = getattr(context, "authentication", None)
    principal = getattr(authentication, "principal", None)
    if isinstance(principal, str):
        return str(principal)
    for field in ("username", "name"):
        name = getattr(principal, field, None)
        if isinstance(name, str):
            return str(name)
    return None

