"""Which requests belong to the sidecar's own ``/.curfew/`` endpoints, and who may keep a
session alive through them. Pure: every listener (the fast lane, the aiohttp dispatch, authz
checks from nginx and Envoy) asks these functions, so they all draw the line in one place.

A request the sidecar takes for its own is answered without the session decision applying to
it (authz mode answers such a check 200), so the line is drawn on the target as every server
behind the sidecar could read it, not only as the sidecar reads it: percent-decoding (once or
more), dot-segment removal (RFC 3986 §5.2.4), ``\\`` read as ``/``, ``;`` path parameters
dropped (Tomcat, Jetty) and ``//`` merged (nginx). A target is reserved only when it is
already in the one spelling that all of these leave unchanged; any other spelling of a path
that might normalise to (or away from) ``/.curfew/`` is an app request, and its session is
checked like any other.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from curfew.sidecar.policy import RESERVED_PREFIX

_CANONICAL: Final = re.compile(
    # Segments of pchar less "%" (no encoding at all) and ";" (path parameters), none of them
    # empty or dots only ("." and "..", and "..." that some Windows servers read as ".."): the
    # spelling no normalisation changes. The last segment may be empty.
    r"(?:/(?!\.+(?:/|$))[A-Za-z0-9\-._~!$&'()*+,=:@]+)+/?"
)

KEEPALIVE_HEADER: Final = "Curfew-Keepalive"
"""The request header the browser client sends with every keepalive. A custom header makes
the request non-simple: a page on another origin cannot send it without a CORS preflight,
which the sidecar never grants."""


def is_reserved_target(target: str) -> bool:
    """Whether a request target (origin-form, as sent) is one of the sidecar's own paths.

    ``/.curfew/session?x=1`` is; ``/.curfew/../admin``, ``/%2Ecurfew/session``,
    ``/.curfew/%2e%2e/admin``, ``/.curfew//x``, ``/.curfew/x;a=b`` and absolute-form targets
    are not (they are app requests).
    """
    path, _, _ = target.partition("?")
    return path.startswith(RESERVED_PREFIX) and _CANONICAL.fullmatch(path) is not None


def keepalive_allowed(
    marker: str | None, origin: str | None, fetch_site: str | None, host: str | None
) -> bool:
    """Whether a ``POST /.curfew/keepalive`` may extend the session it carries.

    It must carry ``Curfew-Keepalive: 1`` and come from the page's own origin: a
    ``Sec-Fetch-Site`` other than ``same-origin`` is refused, and so is an ``Origin`` whose
    host and port are not the request's ``Host`` (``null`` included; a port left out is the
    scheme's default). Browsers send at least one of the two on a POST; a client that sends
    neither is not a browser a foreign page can drive.
    """
    if marker is None or marker.strip() != "1":
        return False
    if fetch_site is not None and fetch_site.strip().lower() != "same-origin":
        return False
    if origin is not None:
        return host is not None and _same_authority(origin.strip(), host.strip())
    return True


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _same_authority(origin: str, host: str) -> bool:
    try:
        named = urlsplit(origin)
        sent = urlsplit("//" + host)
        default = _DEFAULT_PORTS.get(named.scheme)
        if default is None or named.hostname is None or named.path or named.query:
            return False
        return (named.hostname, named.port or default) == (sent.hostname, sent.port or default)
    except ValueError:  # a port that is not a number
        return False
