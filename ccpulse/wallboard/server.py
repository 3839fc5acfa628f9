"""The wallboard's web server: the page, its static files and its event stream (aiohttp).

Routes, all read-only (any other method is 405, on any path):

- ``GET /`` — the page (token-protected);
- ``GET /events?window=15m`` — Server-Sent Events, see ``events`` (token-protected);
- ``GET /static/wallboard.js``, ``/static/wallboard.css`` — code and style, no data;
- ``GET /healthz`` — ``{"ok": true, "redis": true|false|null}``;
- ``GET /favicon.ico`` — 204, so browsers stop asking.

With ``CCPULSE_WALLBOARD_TOKEN`` set, the page and the stream need ``Authorization: Bearer
<token>`` or ``?token=<token>`` (EventSource cannot set headers). When Redis is down the page
is still served and the stream says data is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ccpulse.wallboard.colors import ThresholdsError, load_thresholds, parse_thresholds
from ccpulse.wallboard.events import HEARTBEAT_SECONDS, EventStream, Source
from ccpulse.wallboard.watcher import POLL_SECONDS, Notice, Watcher
from sinks.redis import connect, key_base, redacted
from stream.settings import Settings
from stream.windows import WINDOWS

DEFAULT_PORT = 8088
DEFAULT_WINDOW = "15m"
THRESHOLDS_VARIABLE = "CCPULSE_WALLBOARD_THRESHOLDS"
STATIC = Path(__file__).parent / "static"
ASSETS = {"wallboard.js": "text/javascript", "wallboard.css": "text/css"}
PROTECTED = ("/", "/events")
READ_METHODS = ("GET", "HEAD")
SOURCE = web.AppKey("source", Source)
TOKEN = web.AppKey("token", str)

# Strict: the page loads only its own files and talks only to its own server; inline
# scripts are refused, so even data that slipped into markup could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token may be in the URL
    "X-Frame-Options": "DENY",
}
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def thresholds_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read the thresholds file named by ``CCPULSE_WALLBOARD_THRESHOLDS`` (none: defaults)."""
    # The Settings object (stream/settings.py) is the proper home for this variable; it lives
    # here until a ``wallboard_thresholds`` field is added there.
    return load_thresholds(environ.get(THRESHOLDS_VARIABLE))


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    thresholds: dict[str, Any] | None = None,
) -> int:
    """Serve the wallboard until interrupted; return the exit code."""
    try:
        config = thresholds if thresholds is not None else thresholds_from_env()
        app = create_app(settings, config)
    except ThresholdsError as exc:
        print(f"ccpulse wallboard: thresholds: {exc}", file=sys.stderr)
        return 2
    host = host or settings.web_host
    port = port or DEFAULT_PORT
    print(
        f"ccpulse wallboard on http://{host}:{port}/ (Redis {redacted(settings.redis_url)})",
        flush=True,
    )
    try:
        web.run_app(app, host=host, port=port, print=None, shutdown_timeout=2.0)
    except OSError as exc:
        print(f"ccpulse wallboard: cannot listen on {host}:{port} ({exc})", file=sys.stderr)
        return 1
    return 0


def create_app(
    settings: Settings,
    thresholds: Mapping[str, Any] | None = None,
    poll_seconds: float = POLL_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> web.Application:
    """Build the app; raise ThresholdsError for a bad thresholds configuration."""
    rules = parse_thresholds(thresholds)
    client = connect(settings.redis_url)
    base = key_base(settings.redis_prefix, settings.app_id)
    watcher = Watcher(client, base, poll_seconds)
    app = web.Application(middlewares=[read_only, token_required])
    app[SOURCE] = Source(client, base, watcher, rules, settings.sl_target, heartbeat_seconds)
    app[TOKEN] = settings.wallboard_token
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/favicon.ico", no_icon)
    app.on_response_prepare.append(_secure)
    app.on_shutdown.append(_close_streams)
    app.cleanup_ctx.append(_watching)
    return app


async def _watching(app: web.Application) -> AsyncIterator[None]:
    """Run the watcher while the app runs; close the Redis client after."""
    source = app[SOURCE]
    task = asyncio.create_task(source.watcher.run())
    yield
    source.watcher.stop()
    task.cancel()
    await asyncio.wait({task}, timeout=3.0)
    await source.client.aclose()


async def _close_streams(app: web.Application) -> None:
    app[SOURCE].watcher.tell(Notice("close"))


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def read_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse every method but GET and HEAD, on every path: the wallboard writes nothing."""
    if request.method not in READ_METHODS:
        raise web.HTTPMethodNotAllowed(request.method, READ_METHODS)
    return await handler(request)


@web.middleware
async def token_required(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ask for the token on the page and the stream when one is configured."""
    token = request.app[TOKEN]
    if token and request.path in PROTECTED and not authorized(request, token):
        return web.Response(
            status=401,
            text="This wallboard needs its access token (?token=… or Authorization: Bearer …).\n",
            headers={"WWW-Authenticate": 'Bearer realm="ccpulse wallboard"'},
        )
    return await handler(request)


def authorized(request: web.Request, token: str) -> bool:
    """Check ``Authorization: Bearer`` (else ``?token=``) in constant time."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    offered = value.strip() if scheme.lower() == "bearer" else request.query.get("token", "")
    return hmac.compare_digest(offered.encode(), token.encode())


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:  # a fixed list: no paths from the request reach the file system
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name]})


async def no_icon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True, "redis": request.app[SOURCE].watcher.available})


async def events(request: web.Request) -> web.StreamResponse:
    """Stream one window's tiles to a page (``?window=``, default 15m)."""
    window = request.query.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        raise web.HTTPBadRequest(text=f"unknown window {window!r}; one of {', '.join(WINDOWS)}\n")
    if request.method == "HEAD":
        return web.Response(headers=SSE_HEADERS)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the page went away
        await EventStream(request.app[SOURCE], window, response).run()
    return response
