"""The web app's middleware (gateway/web/asgi.py): in the request's own task, answers of
their own, headers edited before they leave, everything but HTTP passed by."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from starlette.datastructures import MutableHeaders
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.admin.security import AdminGuard
from gateway.web.app import FrontDoor
from gateway.web.asgi import Next, RequestMiddleware
from gateway.web.language import ReadersLanguage

WHO = contextvars.ContextVar("who", default="nobody")


class Stamp(RequestMiddleware):
    """Refuses ``/refused``; otherwise sets WHO around the route and stamps the answer with
    the task it ran in."""

    async def handle(self, request: Request, call_next: Next) -> Response | None:
        if request.url.path == "/refused":
            return PlainTextResponse("no", status_code=403)
        task = id(asyncio.current_task())

        async def stamp(headers: MutableHeaders) -> None:
            headers["X-Middleware-Task"] = str(task)
            headers.setdefault("X-Kept", "from the middleware")

        token = WHO.set("the middleware")
        try:
            await call_next(stamp)
        finally:
            WHO.reset(token)
        return None


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/where")
    async def where() -> Response:
        return PlainTextResponse(
            WHO.get(), headers={"X-Route-Task": str(id(asyncio.current_task())), "X-Kept": "route"}
        )

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(WHO.get())
        await websocket.close()

    app.add_middleware(Stamp, context=None)
    return app


def test_the_route_runs_in_the_middlewares_task_and_sees_its_context() -> None:
    with TestClient(_app()) as client:
        answer = client.get("/where")
    assert answer.status_code == 200
    assert answer.text == "the middleware"
    assert answer.headers["x-middleware-task"] == answer.headers["x-route-task"]
    assert answer.headers["x-kept"] == "route"


def test_a_middleware_may_answer_instead_of_the_route() -> None:
    with TestClient(_app()) as client:
        answer = client.get("/refused")
    assert (answer.status_code, answer.text) == (403, "no")
    assert "x-middleware-task" not in answer.headers


def test_an_answer_without_headers_is_edited_too() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"bare"})

    app = FastAPI()
    app.mount("/bare", bare)
    app.add_middleware(Stamp, context=None)
    with TestClient(app) as client:
        answer = client.get("/bare/")
    assert (answer.status_code, answer.text) == (200, "bare")
    assert answer.headers["x-kept"] == "from the middleware"


def test_anything_but_http_passes_by() -> None:
    with TestClient(_app()) as client, client.websocket_connect("/ws") as socket:
        assert socket.receive_text() == "nobody"


def test_the_front_door_ends_every_websocket() -> None:
    app = _app()
    app.add_middleware(FrontDoor, context=None)
    with TestClient(app) as client, pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws") as socket:
            socket.receive_text()
    assert refused.value.code == 1008


def test_the_web_apps_middleware_are_all_of_this_kind() -> None:
    for middleware in (FrontDoor, ReadersLanguage, AdminGuard):
        assert issubclass(middleware, RequestMiddleware)
