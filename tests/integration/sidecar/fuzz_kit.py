"""What the sidecar's differential fuzz tests share: hypothesis strategies of HTTP/1.1 request
streams (pipelined, split into small writes, bodies framed by ``Content-Length`` or chunked with
extensions and trailers, obfuscated framing), the client that sends them and reads the answers,
the checks every stream's answers must pass, and a real sidecar on an event loop of its own.

``test_sidecar_fuzz.py`` sends the streams through proxy mode to an app that reads with h11;
``test_sidecar_authz_fuzz.py`` sends them as nginx and Envoy checks to authz mode.
``CURFEW_FUZZ_PROFILE=long`` (``make fuzz``) runs many more examples than the suite does;
``CURFEW_FUZZ_EXAMPLES`` sets another number.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httptools
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sidecar_harness import KEY, MountedConfig

from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.enforce import RequestFacts
from curfew.sidecar.main import open_store
from curfew.sidecar.reload import load_policy
from curfew.sidecar.server import Sidecar
from curfew.sidecar.settings import SidecarSettings
from fixtures.policy_docs import policy_doc

T = TypeVar("T")

LONG = os.environ.get("CURFEW_FUZZ_PROFILE") == "long"
"""``make fuzz``: the long profile."""
PATIENCE = 10.0
"""Seconds a client waits for an answer or the end of its connection: only a sidecar that
neither answers nor closes makes it wait that long (and the example then fails), so it can be
generous for a loaded machine."""


def fuzz_profile(name: str, examples: int) -> settings:
    """The hypothesis settings of one fuzz test: ``examples`` in the suite (CI), 200,000 in the
    long profile, or ``CURFEW_FUZZ_EXAMPLES``."""
    name = f"{name}-long" if LONG else name
    settings.register_profile(
        name,
        max_examples=int(os.environ.get("CURFEW_FUZZ_EXAMPLES",
                                        "200000" if LONG else str(examples))),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    return settings.get_profile(name)


# --- one sidecar for every example ------------------------------------------------------------


class Rig:
    """A real sidecar on an event loop in a thread of its own, serving every example; a hook
    on its enforcer counts each request it judges."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.judged: Counter[tuple[str, str, str | None]] = Counter()
        """(method, target, Cookie) of each request the sidecar decided on."""
        self.port = 0
        self.sidecar: Sidecar | None = None
        self.inspector: RedisSessionStore | None = None

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    async def start_sidecar(self, tmp: Path, redis_url: str, **values: Any) -> Sidecar:
        """Start the sidecar (``values``: its settings beyond the config, Redis and key)."""
        mount = MountedConfig(tmp)
        mount.root.mkdir()
        mount.write(policy_doc())
        config = SidecarSettings(
            config=mount.path, listen="127.0.0.1:0", ops_listen="127.0.0.1:0",
            redis_url=redis_url, session_key=KEY.decode(), shutdown_grace_seconds=1, **values,
        )
        policy = load_policy(config.config)
        sidecar = self.sidecar = Sidecar(config, policy, open_store(config, policy))
        enforcer = sidecar.enforcer
        judge = enforcer.begin

        def judged(facts: RequestFacts, activity: bool | None = None) -> Any:
            self.judged[facts.method, facts.target, facts.cookie] += 1
            return judge(facts, activity)

        enforcer.begin = judged  # type: ignore[method-assign]
        self.port = (await sidecar.start())[0][1]
        self.inspector = RedisSessionStore.from_url(
            redis_url, key_prefix=policy.key_prefix, format=policy.store_format)
        return sidecar

    async def stop(self) -> None:
        if self.sidecar is not None:
            await self.sidecar.stop()
        if self.inspector is not None:
            await self.inspector.aclose()

    def close(self) -> None:
        self.run(self.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


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
        return replace(self, probe=probe, target=self.target.replace(PLACEHOLDER, probe),
                       wire=self.wire.replace(PLACEHOLDER.encode(), probe.encode()))


@dataclass
class Stream:
    requests: list[Sent]
    cuts: list[int] = field(default_factory=list)
    """Where the bytes are split into separate writes."""

    @property
    def wire(self) -> bytes:
        return b"".join(r.wire for r in self.requests)

    def numbered(self) -> Stream:
        return Stream([r.numbered() for r in self.requests], self.cuts)


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
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


@st.composite
def framed(draw: st.DrawFn, method: str, target: str, fields: list[bytes],
           cookie: str | None) -> Sent:
    """A request with this request line and these header ``fields`` (its ``cookie`` among
    them), drawn with a body, its framing, and perhaps one trick of :data:`REFUSED_TRICKS` or
    :data:`FINE_TRICKS`."""
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
    lines = [b"%b %b %b" % (method.encode(), target.encode(), version), *fields]
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
    return Sent(PLACEHOLDER, method, target, cookie, body, head + payload,
                refused=trick in REFUSED_TRICKS,
                private=trick == "Connection names a private field",
                handed_off=framing == "chunked" or version == b"HTTP/1.0"
                or trick == "Expect: 100-continue",
                closes=trick == "Connection: close")


@st.composite
def streams(draw: st.DrawFn, requests: st.SearchStrategy[Sent]) -> Stream:
    """One connection's requests (one to four), and where its bytes are cut into writes."""
    sent = draw(st.lists(requests, min_size=1, max_size=4))
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


async def exchange(port: int, stream: Stream) -> tuple[list[Answer], bool]:
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
        if not closed and answers.done and (refusal(answers.done[-1]) or sent[-1].closes):
            closed = await asyncio.wait_for(reader.read(1), PATIENCE) == b""
    except TimeoutError:
        pass  # neither answered nor closed: the checks of the answers say what is missing
    except ConnectionResetError:
        closed = True  # a reset can only follow a refusal (checked with the answers)
    finally:
        writer.close()
    return answers.done, closed


async def exchange_all(port: int, batch: list[Stream]) -> list[tuple[list[Answer], bool]]:
    """The streams of one example, each on a connection of its own, at once."""
    return list(await asyncio.gather(*(exchange(port, s) for s in batch)))


# --- the properties of every stream's answers -------------------------------------------------


def refusal(answer: Answer) -> bool:
    """A 400 for the message itself (not for the session cookies in it)."""
    return answer.status == 400 and b"ambiguous_session" not in answer.body


def answered_in_step(stream: Stream) -> bool:
    """Whether the answers come one per request, in order, up to the last one answered: not
    when aiohttp (after a hand-off) refuses a pipelined head before the requests ahead of it."""
    sent = stream.requests
    first_refused = next((i for i, r in enumerate(sent) if r.refused), len(sent))
    return not any(r.handed_off for r in sent[:first_refused])


def check_answers(stream: Stream, answers: list[Answer], closed: bool) -> None:
    """Well-formed requests are answered whole, in order; a refused one is the last answered,
    with 400, and its connection closed."""
    sent = stream.requests
    for i, answer in enumerate(answers):
        if refusal(answer):
            assert i == len(answers) - 1, "nothing is answered after a refusal"
            assert closed, "a refused connection is closed"
    first_refused = next((i for i, r in enumerate(sent) if r.refused), None)
    last = next((i for i, r in enumerate(sent) if r.closes), len(sent) - 1)
    if first_refused is None or last < first_refused:
        assert len(answers) == last + 1, (
            "well-formed requests are answered whole, up to one that asks to close")
        for i, answer in enumerate(answers):
            assert not refusal(answer), f"well-formed request {i} was refused: {answer.body!r}"
        if sent[last].closes:
            assert closed, "Connection: close is honoured"
        return
    assert closed, "a stream with a request to refuse ends closed"
    if not answered_in_step(stream):
        # aiohttp answers a pipelined head it cannot read at once, before the requests ahead
        # of it, and may close with their bytes unread (a reset): fewer answers, never others.
        assert len(answers) <= first_refused + 1
    else:
        assert len(answers) == first_refused + 1, "the answers stop at the refused request"
        assert refusal(answers[-1])
