"""The simulated CEMM's web port: the single-page app, the public API and test helpers.

Routes (GET also answers HEAD):

``/api/v1/public/cemm``, ``/api/v1/public/meters``
    The vendor's public API; GET only (other methods: 405), unknown API paths: 404 JSON.
``/assets/<file>``
    The page's script, style sheet and icon from ``static/assets/``; unknown files: 404.
``<ws_path>`` (WebSocket only, default ``/ws``)
    The live-data session on the page's own origin, for ``same-origin`` mode without a
    gateway in front.
any other path
    The app's HTML, so client-side deep links such as ``/instellingen/systeem`` load.

Helpers for proxy tests, under ``/_sim/`` (not part of a real CEMM):

``/_sim/echo`` (any method)
    JSON: method, path, raw_path, query, headers (dict; repeated headers joined with
    ", "), header_list ([name, value] pairs as received), client, body_length, body_sha256.
``/_sim/headers``
    JSON: headers and header_list as above.
``/_sim/bytes/<n>``
    ``n`` bytes (at most 100 MiB), chunked; byte ``i`` is ``i % 256``. ``?sized=1`` sends a
    Content-Length instead.
``/_sim/redirect``
    302 to ``http://<Host header>/instellingen/systeem`` - an absolute URL naming the device
    itself, as real devices do; ``?to=/path`` picks another path.
``/_sim/status/<code>``
    A short text response with that status (200-599; 204 and 304 without a body).
``/_sim/delay?seconds=S``
    Answers after S seconds (at most 30).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import importlib.resources
from collections.abc import AsyncIterator
from string import Template
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.simulator.device import Device, meters_document
from gateway.simulator.live import ChannelClosed, run_live_session
from gateway.simulator.traffic import RecordedRequest, Traffic, header_pairs

MAX_BYTES: Final = 100 * 1024 * 1024
MAX_DELAY: Final = 30.0
_CHUNK: Final = bytes(range(256)) * 256  # 64 KiB; a whole number of 256-byte periods

_CONTENT_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}


def _load_static() -> tuple[Template, dict[str, tuple[bytes, str]]]:
    """The page template and the assets (name -> (body, content type)), read once."""
    static = importlib.resources.files("gateway.simulator").joinpath("static")
    page = Template(static.joinpath("index.html").read_text(encoding="utf-8"))
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in static.joinpath("assets").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            assets[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    return page, assets


def render_page(page: Template, device: Device) -> str:
    """The app's HTML with the WebSocket settings the script reads from ``<meta>`` tags."""
    config = device.config
    return page.substitute(
        ws_mode=html.escape(config.page_mode),
        ws_port=device.page_ws_port,
        ws_path=html.escape(config.ws_path),
        interval=config.interval,
    )


def _headers_json(request: Request) -> dict[str, Any]:
    pairs = header_pairs(request.scope["headers"])
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return {"headers": joined, "header_list": [list(pair) for pair in pairs]}


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    if not client:
        return None
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _RecordTraffic:
    """ASGI middleware: note every request before the app sees it."""

    def __init__(self, app: ASGIApp, traffic: Traffic) -> None:
        self._app = app
        self._traffic = traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self._traffic.record(
                RecordedRequest(
                    port="http",
                    method=scope.get("method", "GET"),
                    path=scope["path"],
                    query=scope["query_string"].decode("latin-1"),
                    headers=header_pairs(scope["headers"]),
                    client=_client(scope),
                    websocket=scope["type"] == "websocket",
                )
            )
        await self._app(scope, receive, send)


class _StarletteChannel:
    """:class:`~gateway.simulator.live.LiveChannel` over a Starlette WebSocket."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def send(self, message: str | bytes) -> None:
        try:
            if isinstance(message, str):
                await self._websocket.send_text(message)
            else:
                await self._websocket.send_bytes(message)
        # RuntimeError: Starlette's "already closed"; OSError: the transport went away.
        except (WebSocketDisconnect, RuntimeError, OSError) as gone:
            raise ChannelClosed from gone

    async def receive(self) -> str | bytes | None:
        try:
            message = await self._websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is not None:
            return str(message["text"])
        return bytes(message.get("bytes") or b"")

    async def close(self, code: int, reason: str) -> None:
        try:
            await self._websocket.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass


def create_http_app(device: Device) -> ASGIApp:
    """The ASGI app for the web port of ``device``."""
    page, assets = _load_static()

    async def app_page(request: Request) -> Response:
        # no-cache: the meta tags change when the simulator is restarted with other settings.
        headers = {"Cache-Control": "no-cache"}
        if device.config.csp:
            headers["Content-Security-Policy"] = device.config.csp
        return HTMLResponse(render_page(page, device), headers=headers)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return Response("Not Found\n", status_code=404, media_type="text/plain")
        body, content_type = found
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})

    async def cemm_info(request: Request) -> Response:
        server = request.scope.get("server")
        local_ip = server[0] if server else device.config.host
        return JSONResponse(device.info_document(local_ip))

    async def meters(request: Request) -> Response:
        return JSONResponse(meters_document())

    async def not_found_json(request: Request) -> Response:
        return JSONResponse({"error": "not found", "path": request.url.path}, status_code=404)

    async def echo(request: Request) -> Response:
        digest = hashlib.sha256()
        length = 0
        async for chunk in request.stream():
            digest.update(chunk)
            length += len(chunk)
        scope = request.scope
        return JSONResponse(
            {
                "method": request.method,
                "path": scope["path"],
                "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                **_headers_json(request),
                "client": _client(scope),
                "body_length": length,
                "body_sha256": digest.hexdigest(),
            }
        )

    async def headers(request: Request) -> Response:
        return JSONResponse(_headers_json(request))

    async def some_bytes(request: Request) -> Response:
        count: int = request.path_params["count"]
        if count > MAX_BYTES:
            return Response(
                f"at most {MAX_BYTES} bytes, asked for {count}\n",
                status_code=400,
                media_type="text/plain",
            )

        async def body() -> AsyncIterator[bytes]:
            left = count
            while left > 0 and not device.stopping.is_set():
                piece = _CHUNK[: min(left, len(_CHUNK))]
                left -= len(piece)
                yield piece

        extra = {"Content-Length": str(count)} if request.query_params.get("sized") else {}
        return StreamingResponse(body(), media_type="application/octet-stream", headers=extra)

    async def redirect(request: Request) -> Response:
        target = request.query_params.get("to", "/instellingen/systeem")
        if not target.startswith("/") or target.startswith("//"):
            return Response("'to' must be a path such as /dashboard\n", status_code=400)
        host = request.headers.get("host")
        if not host:
            server = request.scope.get("server") or (device.config.host, device.http_port)
            host = f"{server[0]}:{server[1]}"
        return Response(status_code=302, headers={"Location": f"http://{host}{target}"})

    async def status(request: Request) -> Response:
        code: int = request.path_params["code"]
        if not 200 <= code <= 599:
            return Response("status must be 200-599\n", status_code=400)
        if code in (204, 304):
            return Response(status_code=code)
        return Response(f"status {code}\n", status_code=code, media_type="text/plain")

    async def delay(request: Request) -> Response:
        try:
            seconds = float(request.query_params.get("seconds", "1"))
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= MAX_DELAY:
            return Response(f"seconds must be 0-{MAX_DELAY:g}\n", status_code=400)
        # Wake early when the simulator stops, so stopping never waits for a delay.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(device.stopping.wait(), seconds)
        return JSONResponse({"delayed": seconds})

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_live_session(_StarletteChannel(websocket), device)

    get = ["GET"]
    any_method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        Route("/api/v1/public/cemm", cemm_info, methods=get),
        Route("/api/v1/public/meters", meters, methods=get),
        Route("/api/{rest:path}", not_found_json, methods=get),
        Route("/assets/{name:path}", asset, methods=get),
        Route("/_sim/echo", echo, methods=any_method),
        Route("/_sim/headers", headers, methods=get),
        Route("/_sim/bytes/{count:int}", some_bytes, methods=get),
        Route("/_sim/redirect", redirect, methods=get),
        Route("/_sim/status/{code:int}", status, methods=any_method),
        Route("/_sim/delay", delay, methods=get),
        Route("/_sim/{rest:path}", not_found_json, methods=any_method),
        WebSocketRoute(device.config.ws_path, live),
        Route("/{path:path}", app_page, methods=get),
    ]
    return _RecordTraffic(Starlette(routes=routes), device.traffic)
