"""The one wording of a store outage: the address from the URL without its credentials, and
the socket's failure in the operating system's words, whichever client wrapped it."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest
from redis import exceptions as rexc

from curfew.sessions.errors import outage_at
from curfew.sessions.store import store_address


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://:s3cret-pw@10.0.0.5:6380/2", "10.0.0.5:6380"),
        ("rediss://user:s3cret-pw@redis.example/0", "redis.example:6379"),
        ("redis+cluster://user:s3cret-pw@a:7000,b:7001", "a:7000,b:7001"),
        ("redis+sentinel://:s3cret-pw@s1,s2:26380/mymaster", "s1:26379,s2:26380"),
        ("redis://[::1]:6379", "[::1]:6379"),
        ("unix:///run/redis/redis.sock?password=s3cret-pw", "/run/redis/redis.sock"),
        ("redis://:s3cret-pw@host:notaport", None),
        ("not a url s3cret-pw", None),
    ],
)
def test_the_address_in_outage_messages_never_carries_credentials(
    url: str, address: str | None
) -> None:
    assert store_address(url) == address


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised while handling ``inner``, as a client wraps a socket error."""
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except BaseException as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('10.0.0.5', 6380)"),
         "Redis unavailable at 10.0.0.5:6380: connection refused"),
        (_raised_from(rexc.ConnectionError("Error 111 connecting to 10.0.0.5:6380."),
                      ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")),
         "Redis unavailable at 10.0.0.5:6380: connection refused"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
         "Redis unavailable at 10.0.0.5:6380: name or service not known"),
        (_raised_from(rexc.TimeoutError("Timeout connecting to server"), TimeoutError()),
         "Redis unavailable at 10.0.0.5:6380: timed out"),
        (ConnectionResetError(errno.ECONNRESET, "reset"),
         "Redis unavailable at 10.0.0.5:6380: connection reset by peer"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
         "Redis unavailable at 10.0.0.5:6380: TLS: [SSL: WRONG_VERSION_NUMBER] wrong version "
         "number"),
        (rexc.ResponseError("LOADING Redis is loading the dataset in memory"),
         "Redis unavailable: LOADING Redis is loading the dataset in memory"),
        (rexc.MaxConnectionsError(), "Redis unavailable: MaxConnectionsError"),
    ],
)
def test_an_outage_reads_the_same_whichever_client_met_it(
    error: BaseException, message: str
) -> None:
    assert str(outage_at("10.0.0.5:6380", error)) == message


def test_without_an_address_the_reason_still_reads_the_same() -> None:
    error = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
    assert str(outage_at(None, error)) == "Redis unavailable: connection refused"
