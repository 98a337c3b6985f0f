"""The web app's middleware (gateway/web/asgi.py): in the request's own task, answers of
their own, headers edited before they leave, everything but HTTP passed by; the front
door's refusal of what the proxy did not vouch for, and the 500 of an unforeseen error,
with the security headers."""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from starlette.datastructures import MutableHeaders
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.admin.security import AdminGuard
from gateway.proxy.state import INTERNAL_HEADER
from gateway.web.app import SECURITY_HEADERS, FrontDoor, _handle_errors
from gateway.web.asgi import Next, RequestMiddleware
from gateway.web.language import ReadersLanguage
from tests.support.proxy_state import proxy_state

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


def _front_door_app() -> tuple[FastAPI, str]:
    """The test app behind the real front door, with a real proxy state; and its secret."""

    async def settled() -> None:
        return None

    state = proxy_state()
    app = _app()
    app.add_middleware(
        FrontDoor, context=SimpleNamespace(state=state, logins=SimpleNamespace(settled=settled))
    )
    return app, state.internal_secret


def _assert_security_headers(answer: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, name


def test_the_front_door_refuses_what_the_proxy_did_not_vouch_for_with_the_security_headers() -> (
    None
):
    app, secret = _front_door_app()
    with TestClient(app) as client:
        for presented in ({}, {INTERNAL_HEADER: "not the secret"}, {INTERNAL_HEADER: secret[:-1]}):
            refused = client.get("/where", headers=presented)
            assert refused.status_code == 403, presented
            assert refused.json() == {"detail": "not through the gateway"}
            _assert_security_headers(refused)
        passed = client.get("/where", headers={INTERNAL_HEADER: secret})
    assert (passed.status_code, passed.text) == (200, "the middleware")
    assert passed.headers["x-content-type-options"] == "nosniff"


def test_an_unforeseen_error_answers_500_with_the_security_headers() -> None:
    app = FastAPI()
    _handle_errors(app)

    @app.get("/broken")
    @app.get("/api/broken")
    async def broken() -> Response:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/broken")
        api = client.get("/api/broken")
    assert page.status_code == 500 and "its log says why" in page.text
    assert "a bug" not in page.text
    _assert_security_headers(page)
    assert api.status_code == 500 and api.json()["error"] == "internal_error"
    _assert_security_headers(api)
