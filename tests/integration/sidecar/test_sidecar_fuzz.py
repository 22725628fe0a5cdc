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
``CURFEW_FUZZ_PROFILE=long`` (``make fuzz``) runs many more examples than the default.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import h11
import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sidecar_harness import KEY, MountedConfig, sid_of

from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.enforce import RequestFacts
from curfew.sidecar.main import open_store
from curfew.sidecar.reload import load_policy
from curfew.sidecar.server import Sidecar
from curfew.sidecar.settings import SidecarSettings
from fixtures.policy_docs import policy_doc
from fixtures.redis_servers import RedisServer
from fixtures.sessions import plant

T = TypeVar("T")
MIN = 60_000

LONG = os.environ.get("CURFEW_FUZZ_PROFILE") == "long"
"""``make fuzz``: the long profile."""
settings.register_profile(
    "sidecar-fuzz-long" if LONG else "sidecar-fuzz",
    # At least 10,000 in the default run (CI); CURFEW_FUZZ_EXAMPLES sets another number.
    max_examples=int(os.environ.get("CURFEW_FUZZ_EXAMPLES", "200000" if LONG else "10000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("sidecar-fuzz-long" if LONG else "sidecar-fuzz")
PATIENCE = 10.0
"""Seconds a client waits for an answer or the end of its connection: only a sidecar that
neither answers nor closes makes it wait that long (and the example then fails), so it can be
generous for a loaded machine."""

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


class Rig:
    """Redis, the app and a sidecar in front of it on an event loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = App()
        self.judged: Counter[tuple[str, str, str | None]] = Counter()
        """(method, target, Cookie) of each request the sidecar decided on."""
        self.meant: dict[str, Sent] = {}
        """Every request the clients sent, by probe."""
        self.port = 0
        self._sidecar: Sidecar | None = None
        self._inspector: RedisSessionStore | None = None

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    async def start(self, tmp: Path, redis_url: str) -> None:
        server = await asyncio.start_server(self.app.serve, "127.0.0.1", 0)
        upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        mount = MountedConfig(tmp)
        mount.root.mkdir()
        mount.write(policy_doc())
        config = SidecarSettings(
            config=mount.path, listen="127.0.0.1:0", ops_listen="127.0.0.1:0", mode="proxy",
            redis_url=redis_url, session_key=KEY.decode(), upstream=upstream,
            shutdown_grace_seconds=1,
        )
        policy = load_policy(config.config)
        sidecar = self._sidecar = Sidecar(config, policy, open_store(config, policy))
        enforcer = sidecar.enforcer
        judge = enforcer.begin

        def judged(facts: RequestFacts, activity: bool | None = None) -> Any:
            self.judged[facts.method, facts.target, facts.cookie] += 1
            return judge(facts, activity)

        enforcer.begin = judged  # type: ignore[method-assign]
        self.port = (await sidecar.start())[0][1]
        inspector = self._inspector = RedisSessionStore.from_url(
            redis_url, key_prefix=policy.key_prefix, format=policy.store_format)
        await plant(inspector, sid_of("raw-expired"), created_ago_ms=20 * MIN,
                    last_ago_ms=16 * MIN)

    async def stop(self) -> None:
        if self._sidecar is not None:
            await self._sidecar.stop()
        if self._inspector is not None:
            await self._inspector.aclose()

    def close(self) -> None:
        self.run(self.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Rig]:
    redis_server.client().flushall()
    rig = Rig()
    rig.run(rig.start(tmp_path_factory.mktemp("fuzz") / "config", redis_server.url))
    yield rig
    rig.close()


# --- what the client sends --------------------------------------------------------------------

_probes = itertools.count()
PLACEHOLDER = "p" + "0" * 10
"""Each request's probe while generated; given a unique one (of the same length) when sent,
so that generation never depends on what ran before."""

REFUSED_TRICKS = {
    "two lengths": b"",
    "a length twice": b"",
    "length and chunked": b"",
    "signed length": b"",
    "Connection: content-length": b"Connection: content-length\r\n",
    "Connection: keep-alive, Content-Length": b"Connection: keep-alive, Content-Length\r\n",
    "a second Connection: transfer-encoding": (
        b"Connection: keep-alive\r\nConnection: Transfer-Encoding\r\n"),
    "Connection: host": b"Connection: host\r\n",
    "Connection: curfew-principal": b"Connection: x-a, curfew-principal\r\n",
    "obs-fold": b"X-Folded: a\r\n  b\r\n",
    "two hosts": b"Host: other\r\n",
    "space before the colon": b"X-Space : 1\r\n",
    "bare LF": b"",
    "chunked, then another coding": b"",
    "obs-fold in Transfer-Encoding": b"",
}
"""Shapes the sidecar must refuse with 400 (the request that carries one, and what follows)."""

FINE_TRICKS = {
    "Connection names a private field": b"Connection: keep-alive, X-Private\r\nX-Private: p\r\n",
    "a client Curfew field": b"Curfew-Principal: client-forged\r\nCurfew-Idle-Remaining: 9\r\n",
    "trailing space in the length": b"",
    "Transfer-Encoding in capitals": b"",
    "Expect: 100-continue": b"Expect: 100-continue\r\n",
    "HTTP/1.0 kept alive": b"",
    "empty lines before the request": b"",
    "the app adds an answer past the framing": b"X-Extra: 1\r\n",
    "Connection: close": b"Connection: close\r\n",
}
"""Shapes the sidecar serves: each request carrying them must be answered, and correctly."""


@dataclass
class Sent:
    probe: str
    method: str
    target: str
    cookie: str | None
    body: bytes
    wire: bytes
    refused: bool
    """The sidecar must answer 400 and close instead of serving this request."""
    private: bool = False
    """Its ``Connection`` names ``X-Private``: the app must not get that field."""
    handed_off: bool = False
    """A shape the fast lane hands off: aiohttp reads the connection from there on."""
    closes: bool = False
    """It asks to close the connection after its answer."""


    def numbered(self) -> Sent:
        """This request with a probe of its own."""
        probe = f"p{next(_probes):010d}"
        return Sent(probe, self.method, self.target.replace(PLACEHOLDER, probe), self.cookie,
                    self.body, self.wire.replace(PLACEHOLDER.encode(), probe.encode()),
                    self.refused, self.private, self.handed_off, self.closes)


@dataclass
class Stream:
    requests: list[Sent]
    cuts: list[int] = field(default_factory=list)
    """Where the bytes are split into separate writes."""

    @property
    def wire(self) -> bytes:
        return b"".join(r.wire for r in self.requests)


def _chunked(body: bytes, sizes: list[int], ext: bool, trailer: bool) -> bytes:
    out, rest = [], body
    for size in sizes:
        if not rest:
            break
        piece, rest = rest[:size], rest[size:]
        out.append(b"%x%b\r\n%b\r\n" % (len(piece), b";ext=1;q=\"a b\"" if ext else b"", piece))
    if rest:
        out.append(b"%x\r\n%b\r\n" % (len(rest), rest))
    out.append(b"0\r\n" + (b"X-Trailer: t\r\n" if trailer else b"") + b"\r\n")
    return b"".join(out)


SMUGGLED = (b"GET /smuggled HTTP/1.1\r\nHost: shop\r\nCookie: session=raw-expired\r\n"
            b"X-Probe: smuggled\r\n\r\n")
COOKIES = [None, "session=raw-fuzz-live", "session=raw-expired", "theme=dark",
           "session=raw-fuzz-live; session=raw-other"]


@st.composite
def requests(draw: st.DrawFn) -> Sent:
    probe = PLACEHOLDER
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    query = draw(st.sampled_from(["", "?q=1", "?a=%2F&b=..%2F"]))
    target = f"/f/{probe}{query}"
    cookie = draw(st.sampled_from(COOKIES))
    body = draw(st.one_of(st.just(b""), st.binary(max_size=48), st.just(SMUGGLED)))
    framing = draw(st.sampled_from(["length", "chunked"])) if body else draw(
        st.sampled_from(["none", "length", "chunked"]))
    trick = draw(st.one_of(st.none(), st.sampled_from(sorted(REFUSED_TRICKS)),
                           st.sampled_from(sorted(FINE_TRICKS))))
    version = b"HTTP/1.0" if trick == "HTTP/1.0 kept alive" else b"HTTP/1.1"
    if trick in ("length and chunked", "chunked, then another coding",
                 "obs-fold in Transfer-Encoding", "Transfer-Encoding in capitals"):
        framing = "chunked"
    if trick in ("two lengths", "a length twice", "signed length",
                 "trailing space in the length") and framing != "length":
        framing = "length"
    if version == b"HTTP/1.0" and framing == "chunked":
        framing = "length"
    lines = [b"%b %b %b" % (method.encode(), target.encode(), version), b"Host: shop",
             b"X-Probe: " + probe.encode()]
    if cookie is not None:
        lines.append(b"Cookie: " + cookie.encode())
    if version == b"HTTP/1.0":
        lines.append(b"Connection: keep-alive")
    payload = body
    if framing == "length":
        value = b"%d" % len(body)
        if trick == "signed length":
            value = b"+" + value
        elif trick == "trailing space in the length":
            value += b" "
        lines.append(b"Content-Length: " + value)
        if trick == "a length twice":
            lines.append(b"content-length: %d" % len(body))
        elif trick == "two lengths":
            lines.append(b"Content-Length: %d" % (len(body) + 7))
    elif framing == "chunked":
        sizes = draw(st.lists(st.integers(1, 16), max_size=4))
        payload = _chunked(body, sizes, draw(st.booleans()), draw(st.booleans()))
        coding = {"Transfer-Encoding in capitals": b"Transfer-Encoding: CHUNKED",
                  "chunked, then another coding": b"Transfer-Encoding: chunked, gzip",
                  "obs-fold in Transfer-Encoding": b"Transfer-Encoding:\r\n chunked",
                  }.get(trick or "", b"Transfer-Encoding: chunked")
        lines.append(coding)
        if trick == "length and chunked":
            lines.append(b"Content-Length: %d" % len(payload))
    extra = REFUSED_TRICKS.get(trick or "") or FINE_TRICKS.get(trick or "") or b""
    head = b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"
    if trick == "bare LF":
        at = draw(st.integers(0, head.count(b"\r\n") - 1))
        parts = head.split(b"\r\n")
        head = b"\r\n".join(parts[:at + 1]) + b"\n" + b"\r\n".join(parts[at + 1:])
    if trick == "empty lines before the request":
        head = b"\r\n" + head
    return Sent(probe, method, target, cookie, body, head + payload,
                refused=trick in REFUSED_TRICKS,
                private=trick == "Connection names a private field",
                handed_off=framing == "chunked" or version == b"HTTP/1.0"
                or trick == "Expect: 100-continue",
                closes=trick == "Connection: close")


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    sent = draw(st.lists(requests(), min_size=1, max_size=4))
    # A client that asked to close sends nothing more (RFC 9112 section 9.6).
    sent = sent[:next((i + 1 for i, r in enumerate(sent) if r.closes), len(sent))]
    total = sum(len(r.wire) for r in sent)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, total - 1)), max_size=4))))
    return Stream(sent, cuts)


# --- what the client reads --------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes = b""


class _Answers:
    """The client's reading of the sidecar's answers (1xx skipped)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[Answer] = []
        self._current: Answer | None = None

    def on_message_begin(self) -> None:
        self._current = Answer(0, {})

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        self._current.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        assert self._current is not None
        self._current.status = self.parser.get_status_code()

    def on_body(self, data: bytes) -> None:
        assert self._current is not None
        self._current.body += data

    def on_message_complete(self) -> None:
        assert self._current is not None
        if self._current.status >= 200:
            self.done.append(self._current)


async def _exchange(port: int, stream: Stream) -> tuple[list[Answer], bool]:
    """Send the stream in its pieces; the answers read, and whether the sidecar closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    wire = stream.wire
    start = 0
    answers = _Answers()
    closed = False
    sent = stream.requests
    # Answers to wait for: up to the first request that is refused or asks to close.
    expected = next((i + 1 for i, r in enumerate(sent) if r.refused or r.closes), len(sent))
    try:
        for cut in [*stream.cuts, len(wire)]:
            if cut > start:
                writer.write(wire[start:cut])
                await writer.drain()
                await asyncio.sleep(0)
                start = cut
        while len(answers.done) < expected:
            data = await asyncio.wait_for(reader.read(65536), PATIENCE)
            if not data:
                closed = True
                break
            answers.parser.feed_data(data)
        if not closed and answers.done and (_refusal(answers.done[-1]) or sent[-1].closes):
            closed = await asyncio.wait_for(reader.read(1), PATIENCE) == b""
    except TimeoutError:
        pass  # neither answered nor closed: the checks of the answers say what is missing
    except ConnectionResetError:
        closed = True  # a reset can only follow a refusal (checked with the answers)
    finally:
        writer.close()
    return answers.done, closed


# --- the properties -----------------------------------------------------------------------------


def _refusal(answer: Answer) -> bool:
    """A 400 for the message itself (not for the session cookies in it)."""
    return answer.status == 400 and b"ambiguous_session" not in answer.body


def _check_answers(stream: Stream, answers: list[Answer], closed: bool) -> None:
    sent = stream.requests
    for i, answer in enumerate(answers):
        echo = answer.headers.get(b"x-probe-echo")
        assert echo != b"forged", "an answer past another's framing reached a client"
        if echo is not None:
            assert echo == sent[i].probe.encode(), (
                f"answer {i} belongs to {echo!r}, not to its own request {sent[i].probe}")
            assert answer.body == echo
        if _refusal(answer):
            assert i == len(answers) - 1, "nothing is answered after a refusal"
            assert closed, "a refused connection is closed"
    first_refused = next((i for i, r in enumerate(sent) if r.refused), None)
    last = next((i for i, r in enumerate(sent) if r.closes), len(sent) - 1)
    if first_refused is None or last < first_refused:
        assert len(answers) == last + 1, (
            "well-formed requests are answered whole, up to one that asks to close")
        for i, answer in enumerate(answers):
            assert not _refusal(answer), f"well-formed request {i} was refused: {answer.body!r}"
        if sent[last].closes:
            assert closed, "Connection: close is honoured"
        return
    assert closed, "a stream with a request to refuse ends closed"
    if any(r.handed_off for r in sent[:first_refused]):
        # aiohttp answers a pipelined head it cannot read at once, before the requests ahead
        # of it, and may close with their bytes unread (a reset): fewer answers, never others.
        assert len(answers) <= first_refused + 1
    else:
        assert len(answers) == first_refused + 1, "the answers stop at the refused request"
        assert _refusal(answers[-1])


def _check_app(rig: Rig, seen: int) -> None:
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


async def _run(rig: Rig, batch: list[Stream]) -> list[tuple[list[Answer], bool]]:
    return list(await asyncio.gather(*(_exchange(rig.port, s) for s in batch)))


@pytest.mark.timeout(86_400 if LONG else 1_800)
def test_what_the_app_receives_is_exactly_what_the_sidecar_judged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # thousands of examples: keep no log records
    served = Counter[str]()

    @PROFILE
    @given(st.lists(streams(), min_size=1, max_size=2))
    def example(drawn: list[Stream]) -> None:
        batch = [Stream([r.numbered() for r in s.requests], s.cuts) for s in drawn]
        seen = len(rig.app.received)
        rig.meant.update((r.probe, r) for s in batch for r in s.requests)
        results = rig.run(_run(rig, batch))
        for stream, (answers, closed) in zip(batch, results, strict=True):
            _check_answers(stream, answers, closed)
        rig.run(asyncio.sleep(0.005))  # let the last bytes reach the app
        _check_app(rig, seen)
        assert not rig.app.errors, rig.app.errors
        served["examples"] += 1
        served["received"] = len(rig.app.received)

    example()
    assert served["received"] > served["examples"] // 2, "the fuzzing reached the app"
