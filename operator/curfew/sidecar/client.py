"""The browser client's endpoints: ``/.curfew/client.js``, ``client.css`` and ``client.json``.

Served only while the policy in force has ``client.enabled``, checked per request so a config
reload turns them on or off without a restart; otherwise they answer 404 like any unknown
``/.curfew/`` path. The script and stylesheet are static files shipped in the package, served
with a strong ETag so browsers revalidate cheaply; ``client.json`` carries what the script needs
from the policy (where to re-authenticate) and is never cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Final

from aiohttp import web

from curfew.sidecar.reload import ConfigWatcher

CLIENT_JS_PATH: Final = "/.curfew/client.js"
CLIENT_CSS_PATH: Final = "/.curfew/client.css"
CLIENT_CONFIG_PATH: Final = "/.curfew/client.json"

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_SECURITY_HEADERS: Final = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file of the client, read once."""

    body: bytes
    content_type: str
    etag: str

    @classmethod
    def load(cls, name: str, content_type: str) -> Asset:
        body = resources.files("curfew.sidecar").joinpath(f"static/{name}").read_bytes()
        return cls(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def build_client_config(watcher: ConfigWatcher) -> bytes:
    """The body of ``client.json``: where the script sends a user whose session ended."""
    policy = watcher.policy
    return json.dumps({
        "loginURL": policy.login_url,
        "returnToParameter": policy.return_to_parameter,
        "loginPrefix": policy.login_prefix,
        "warningLeadSeconds": policy.warning_lead,
    }).encode()


class ClientEndpoints:
    """The client's three endpoints, answering for the policy ``watcher`` holds."""

    def __init__(self, watcher: ConfigWatcher) -> None:
        self._watcher = watcher
        self._js = Asset.load("client.js", "application/javascript")
        self._css = Asset.load("client.css", "text/css")

    def routes(self) -> dict[tuple[str, str], Handler]:
        """(method, path) -> handler, for the sidecar's reserved endpoints."""
        return {
            ("GET", CLIENT_JS_PATH): self._script,
            ("GET", CLIENT_CSS_PATH): self._stylesheet,
            ("GET", CLIENT_CONFIG_PATH): self._config,
        }

    @property
    def enabled(self) -> bool:
        return self._watcher.policy.config.client.enabled

    async def _script(self, request: web.BaseRequest) -> web.StreamResponse:
        return self._asset(request, self._js)

    async def _stylesheet(self, request: web.BaseRequest) -> web.StreamResponse:
        return self._asset(request, self._css)

    def _asset(self, request: web.BaseRequest, asset: Asset) -> web.StreamResponse:
        if not self.enabled:
            return _disabled()
        headers = {**_SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers
        )

    async def _config(self, request: web.BaseRequest) -> web.StreamResponse:
        if not self.enabled:
            return _disabled()
        return web.Response(
            body=build_client_config(self._watcher), content_type="application/json",
            headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"},
        )


def _disabled() -> web.Response:
    return web.Response(status=404, text="the curfew client is not enabled by this policy")
