"""The demo's sample web app: a small notes app with its own sign-in, meant to sit behind the
enforcement sidecar.

It knows nothing of Curfew beyond two tags on each page (the client's script and stylesheet)
and a page script that shows the countdown and keeps a draft when ``curfew:expiring`` fires.
Its sign-in page is the policy's ``loginURL``: it issues a fresh session cookie and sends the
user back to ``return_to`` (same-origin paths only). Pages are served under a strict
Content-Security-Policy, which the client must live with.
"""

from __future__ import annotations

import html
import secrets
from importlib import resources
from typing import Final

from aiohttp import web

from curfew.sidecar.policy import REASON_PARAMETER, form_encode, safe_return_path

COOKIE: Final = "demo_session"
LOGIN_PATH: Final = "/login"
RETURN_TO: Final = "return_to"
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

USERS: web.AppKey[dict[str, str]] = web.AppKey("users", dict)
"""Session cookie value -> user name: the app's own session store (gone on restart)."""
NOTES: web.AppKey[dict[str, tuple[str, str]]] = web.AppKey("notes", dict)
LIMITS: web.AppKey[tuple[float, float]] = web.AppKey("limits", tuple)
"""The demo policy's (idle, absolute) seconds, which the sign-in page names."""

SAMPLE_NOTES: Final = {
    "7": ("Quarterly report", "Revenue grew in every region but one. Before sending:\n"),
    "12": ("Trip checklist", "Passport, charger, the blue notebook.\n"),
}


def _static(name: str) -> bytes:
    return resources.files("curfew.demo").joinpath(f"static/{name}").read_bytes()


def _page(title: str, body: str, *, user: str | None) -> web.Response:
    who = (
        f'<p class="who">Signed in as <strong>{html.escape(user)}</strong> · '
        f'<a href="/logout">Sign out</a></p>'
        if user else ""
    )
    countdown = (
        '<p class="countdown" id="countdown" hidden>Idle timeout in '
        '<strong id="idle-left">-</strong> · session ends in '
        '<strong id="absolute-left">-</strong> <span id="session-note"></span></p>'
        if user else ""
    )
    client = (
        '<link rel="stylesheet" href="/.curfew/client.css" data-curfew>\n'
        '<script src="/.curfew/client.js" defer data-sign-out-url="/logout"></script>\n'
        if user else ""
    )
    text = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Acme Notes</title>
<link rel="stylesheet" href="/static/demo.css">
{client}<script src="/static/demo.js" defer></script>
</head>
<body>
<header><a class="brand" href="/">Acme Notes</a>{who}</header>
{countdown}
<main>
{body}
</main>
<footer>A sample app behind the Curfew sidecar.</footer>
</body>
</html>
"""
    return web.Response(
        text=text, content_type="text/html",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )


def _user(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return request.app[USERS].get(token) if token else None


def _to_login(request: web.Request) -> web.HTTPFound:
    found = web.HTTPFound(LOGIN_PATH)
    # Encoded as the sidecar and the browser client encode it (curfew.sidecar.policy), and set
    # as is: aiohttp would re-encode the location through yarl (``%2F`` -> ``/``).
    target = safe_return_path(request.raw_path)
    found.headers["Location"] = f"{LOGIN_PATH}?{RETURN_TO}={form_encode(target)}"
    return found


def spoken_duration(seconds: float) -> str:
    """``30 s``, ``3 min``, ``1 min 30 s``, ``2 h``: a limit as the sign-in page says it."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def why_signed_out(reason: str | None, idle: float, absolute: float) -> str | None:
    """The sign-in page's sentence for the reason the sidecar or its client gave; None without
    one. Never the parameter's own text: it is whatever the URL says."""
    if reason is None:
        return None
    if reason == "idle":
        return f"You were signed out after {spoken_duration(idle)} without activity."
    if reason == "absolute":
        return (f"You were signed out because sessions last at most "
                f"{spoken_duration(absolute)}, however active.")
    if reason == "signout":
        return "You signed out, here or in another tab."
    return "Your session ended."


async def home(request: web.Request) -> web.Response:
    user = _user(request)
    if user is None:
        raise _to_login(request)
    items = "\n".join(
        f'<li><a href="/notes/{key}?view=edit">{html.escape(title)}</a></li>'
        for key, (title, _) in request.app[NOTES].items()
    )
    body = f"""<h1>Your notes</h1>
<ul class="notes">
{items}
</ul>
<p class="hint">Open a note and start typing, then leave the page alone: a warning appears
before the idle timeout, and your draft is kept if you are signed out.</p>"""
    return _page("Your notes", body, user=user)


async def note(request: web.Request) -> web.Response:
    user = _user(request)
    if user is None:
        raise _to_login(request)
    key = request.match_info["note"]
    notes = request.app[NOTES]
    if key not in notes:
        return await not_found(request)
    title, text = notes[key]
    body = f"""<h1 id="note-title">{html.escape(title)}</h1>
<form class="editor" method="post" action="/notes/{key}">
<label for="draft">Note</label>
<textarea id="draft" name="text" rows="10"
          data-draft-key="note-{key}">{html.escape(text)}</textarea>
<p id="draft-status" class="draft-status" role="status"></p>
<button type="submit">Save</button>
</form>"""
    return _page(title, body, user=user)


async def save_note(request: web.Request) -> web.Response:
    if _user(request) is None:
        raise _to_login(request)
    key = request.match_info["note"]
    notes = request.app[NOTES]
    if key not in notes:
        raise web.HTTPNotFound(text="no such note")
    form = await request.post()
    notes[key] = (notes[key][0], str(form.get("text", "")))
    raise web.HTTPSeeOther(f"/notes/{key}?view=edit&saved=1")


async def not_found(request: web.Request) -> web.Response:
    """Any other page: a 404 in the app's layout, which (signed in) carries the client too."""
    user = _user(request)
    if user is None:
        raise _to_login(request)
    response = _page("Not found", '<h1>Not found</h1>\n<p>There is no such page. '
                     '<a href="/">Your notes</a></p>', user=user)
    response.set_status(404)
    return response


async def login_page(request: web.Request) -> web.Response:
    target = safe_return_path(request.query.get(RETURN_TO, "/"))
    why = why_signed_out(request.query.get(REASON_PARAMETER), *request.app[LIMITS])
    notice = f'<p class="signed-out" id="signed-out" role="status">{why}</p>\n' if why else ""
    body = f"""{notice}<h1>Sign in</h1>
<form class="login" method="post" action="{LOGIN_PATH}">
<input type="hidden" name="{RETURN_TO}" value="{html.escape(target)}">
<label for="username">Name</label>
<input id="username" name="username" autocomplete="username" value="ada" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"
       value="demo">
<button id="sign-in" type="submit">Sign in</button>
</form>
<p class="hint">Any name and password will do. After signing in you return to
<code id="return-to">{html.escape(target)}</code>.</p>"""
    return _page("Sign in", body, user=None)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    name = str(form.get("username", "")).strip()[:64] or "ada"
    token = secrets.token_urlsafe(32)
    request.app[USERS][token] = name
    # Back to the very bytes the user left: aiohttp's redirect exceptions would re-encode the
    # target through yarl (``%2F`` -> ``/``, ``%7E`` -> ``~``).
    response = web.Response(
        status=303, headers={"Location": safe_return_path(str(form.get(RETURN_TO, "/")))})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    if token:
        request.app[USERS].pop(token, None)
    response = web.HTTPSeeOther(LOGIN_PATH)
    response.del_cookie(COOKIE, path="/")
    raise response


def _asset(name: str, content_type: str) -> web.Response:
    return web.Response(body=_static(name), content_type=content_type, charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def demo_js(request: web.Request) -> web.Response:
    return _asset("demo.js", "application/javascript")


async def demo_css(request: web.Request) -> web.Response:
    return _asset("demo.css", "text/css")


def build_app(idle_seconds: float, absolute_seconds: float) -> web.Application:
    """The sample app for a policy of these limits, ready to run (nothing starts here)."""
    app = web.Application()
    app[USERS] = {}
    app[NOTES] = dict(SAMPLE_NOTES)
    app[LIMITS] = (idle_seconds, absolute_seconds)
    app.router.add_get("/", home)
    app.router.add_get("/notes/{note}", note)
    app.router.add_post("/notes/{note}", save_note)
    app.router.add_get(LOGIN_PATH, login_page)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_get("/logout", logout)
    app.router.add_get("/static/demo.js", demo_js)
    app.router.add_get("/static/demo.css", demo_css)
    app.router.add_get("/{any:.*}", not_found)
    return app
