"""Differential fuzzing of the sidecar's HTTP/1.1 reading against an app that reads with h11.

Hypothesis writes request streams (pipelined, split into small writes, one or two connections
at once, bodies framed by ``Content-Length`` or chunked with extensions and trailers, and
obfuscated framing: repeated or conflicting ``Content-Length``, ``Transfer-Encoding``
spellings, ``Connection`` naming framing or ``Curfew-*`` fields, obs-fold, bare LF,
``Expect``, HTTP/1.0). They go through a real sidecar (proxy mode, real Redis) to an app on
loopback that reads every byte it receives with h11, a parser that shares no code with llhttp,
and records each request. Checked after every example:

- every request the app received is one the sidecar judged (a hook on the enforcer records
  each decision), with the same method, target and ``Cookie``; it is a request the client
  meant, not one hidden in a body, with the body the client meant; no client ``Curfew-*``
  value and no field the client's ``Connection`` named reaches the app;
- every answer a client reads belongs to its own request, in order, never an answer the app
  slipped past the framing of another one; a refused stream is refused with 400 and closed;
  a stream of well-formed requests is answered whole.

One sidecar, app and Redis serve every example (an event loop in a thread of their own).
The strategies, the client and the checks every stream's answers pass are ``fuzz_kit``'s,
shared with authz mode's fuzz test. ``CURFEW_FUZZ_PROFILE=long`` (``make fuzz``) runs many more
examples than the default.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h11
import pytest
from fuzz_kit import (
    LONG,
    METHODS,
    PLACEHOLDER,
    Answer,
    Rig,
    Sent,
    Stream,
    check_answers,
    exchange_all,
    framed,
    fuzz_profile,
    streams,
)
from hypothesis import given
from hypothesis import strategies as st
from sidecar_harness import sid_of

from fixtures.redis_servers import RedisServer
from fixtures.sessions import plant

MIN = 60_000
# At least 10,000 in the default run (CI).
PROFILE = fuzz_profile("sidecar-fuzz", 10_000)

# --- the app: reads with h11, records every request ----------------------------------------


@dataclass
class Received:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


class App:
    """Answers each request with its ``X-Probe`` as the body and ``X-Probe-Echo``; when asked
    (``X-Extra: 1``), sends a forged second answer past the first one's framing."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.errors: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        current: Received | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    current = Received(event.method, event.target, list(event.headers))
                elif isinstance(event, h11.Data):
                    assert current is not None
                    current.body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    assert current is not None
                    self.received.append(current)
                    self._answer(conn, writer, current)
                    current = None
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except h11.RemoteProtocolError as error:
            # The sidecar sent what an independent parser cannot read: a finding.
            self.errors.append(f"h11 could not read what the sidecar sent: {error}")
        except ConnectionError:
            pass
        finally:
            writer.close()

    @staticmethod
    def _answer(conn: h11.Connection, writer: asyncio.StreamWriter, request: Received) -> None:
        probe = (request.values(b"x-probe") or [b"none"])[0]
        out = conn.send(h11.Response(status_code=200, headers=[
            ("Content-Length", str(len(probe))), ("X-Probe-Echo", probe)]))
        out += conn.send(h11.Data(data=probe)) + conn.send(h11.EndOfMessage())
        if request.values(b"x-extra"):
            out += b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Probe-Echo: forged\r\n\r\nforged"
        writer.write(out)


# --- one sidecar for every example ------------------------------------------------------------


class ProxyRig(Rig):
    """Redis, the app and a sidecar in front of it."""

    def __init__(self) -> None:
        super().__init__()
        self.app = App()
        self.meant: dict[str, Sent] = {}
        """Every request the clients sent, by probe."""

    async def start(self, tmp: Path, redis_url: str) -> None:
        server = await asyncio.start_server(self.app.serve, "127.0.0.1", 0)
        upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        await self.start_sidecar(tmp, redis_url, mode="proxy", upstream=upstream)
        assert self.inspector is not None
        await plant(self.inspector, sid_of("raw-expired"), created_ago_ms=20 * MIN,
                    last_ago_ms=16 * MIN)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
        ) -> Iterator[ProxyRig]:
    redis_server.client().flushall()
    rig = ProxyRig()
    rig.run(rig.start(tmp_path_factory.mktemp("fuzz") / "config", redis_server.url))
    yield rig
    rig.close()


# --- what the client sends --------------------------------------------------------------------

COOKIES = [None, "session=raw-fuzz-live", "session=raw-expired", "theme=dark",
           "session=raw-fuzz-live; session=raw-other"]


@st.composite
def requests(draw: st.DrawFn) -> Sent:
    method = draw(st.sampled_from(METHODS))
    query = draw(st.sampled_from(["", "?q=1", "?a=%2F&b=..%2F"]))
    target = f"/f/{PLACEHOLDER}{query}"
    cookie = draw(st.sampled_from(COOKIES))
    fields = [b"Host: shop", b"X-Probe: " + PLACEHOLDER.encode()]
    if cookie is not None:
        fields.append(b"Cookie: " + cookie.encode())
    return draw(framed(method, target, fields, cookie))


# --- the properties -----------------------------------------------------------------------------


def _check_echoes(stream: Stream, answers: list[Answer]) -> None:
    """Every answer the app wrote belongs to its own request."""
    sent = stream.requests
    for i, answer in enumerate(answers):
        echo = answer.headers.get(b"x-probe-echo")
        assert echo != b"forged", "an answer past another's framing reached a client"
        if echo is not None:
            assert echo == sent[i].probe.encode(), (
                f"answer {i} belongs to {echo!r}, not to its own request {sent[i].probe}")
            assert answer.body == echo


def _check_app(rig: ProxyRig, seen: int) -> None:
    meant = rig.meant
    for got in rig.app.received[seen:]:
        target = got.target.decode("latin-1")
        cookie = b"; ".join(got.values(b"cookie")).decode("latin-1") or None
        key = (got.method.decode("latin-1"), target, cookie)
        assert rig.judged[key] > 0, f"the app got a request the sidecar never judged: {key}"
        rig.judged[key] -= 1
        probe = (got.values(b"x-probe") or [b"?"])[0].decode("latin-1")
        assert probe in meant, f"the app got a request the client never meant: {key}"
        intended = meant[probe]
        assert (got.method.decode(), target, cookie) == (
            intended.method, intended.target, intended.cookie)
        assert got.body == intended.body, "the app got another body than the client sent"
        assert not intended.refused, "a request the sidecar must refuse reached the app"
        assert b"client-forged" not in [v for _, v in got.headers], "a client Curfew field"
        if intended.private:
            assert not got.values(b"x-private"), "a field Connection named reached the app"


@pytest.mark.timeout(86_400 if LONG else 1_800)
def test_what_the_app_receives_is_exactly_what_the_sidecar_judged(
    rig: ProxyRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # thousands of examples: keep no log records
    served = Counter[str]()

    @PROFILE
    @given(st.lists(streams(requests()), min_size=1, max_size=2))
    def example(drawn: list[Stream]) -> None:
        batch = [s.numbered() for s in drawn]
        seen = len(rig.app.received)
        rig.meant.update((r.probe, r) for s in batch for r in s.requests)
        results = rig.run(exchange_all(rig.port, batch))
        for stream, (answers, closed) in zip(batch, results, strict=True):
            _check_echoes(stream, answers)
            check_answers(stream, answers, closed)
        rig.run(asyncio.sleep(0.005))  # let the last bytes reach the app
        _check_app(rig, seen)
        assert not rig.app.errors, rig.app.errors
        served["examples"] += 1
        served["received"] = len(rig.app.received)

    example()
    assert served["received"] > served["examples"] // 2, "the fuzzing reached the app"
