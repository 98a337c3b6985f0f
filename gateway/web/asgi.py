"""The web app's middleware, as plain ASGI.

Each middleware of the web app (the front door, the reader's language, the admin guard)
is a :class:`RequestMiddleware`: it decides on the request, may answer it itself, and may
edit the answer's headers before they leave (the ``edit`` it hands ``call_next``). It runs
in the request's own task - no task, stream or buffered answer of its own per request, as
Starlette's ``BaseHTTPMiddleware`` makes - so a burst of requests (a login storm) costs the
event loop the proxy shares with the web app no more than the routes themselves. Context
variables it sets around :meth:`RequestMiddleware.handle` are seen by the route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.web.context import WebContext

__all__ = ["Edit", "Next", "RequestMiddleware"]

#: What a middleware does to the answer's headers as they leave.
Edit = Callable[[MutableHeaders], Awaitable[None]]

#: What a middleware calls to pass the request on, with its header edit (or None):
#: ``await call_next(edit)``.
Next = Callable[[Edit | None], Awaitable[None]]


class RequestMiddleware:
    """One middleware over HTTP requests; anything else (lifespan, WebSocket) passes by."""

    def __init__(self, app: ASGIApp, *, context: WebContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def call_next(edit: Edit | None) -> None:
            if edit is None:
                await self.app(scope, receive, send)
                return

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message.setdefault("headers", [])  # ASGI lets an answer leave it out
                    await edit(MutableHeaders(scope=message))
                await send(message)

            await self.app(scope, receive, sending)

        answer = await self.handle(Request(scope, receive), call_next)
        if answer is not None:
            await answer(scope, receive, send)

    async def handle(
        self, request: Request, call_next: Next
    ) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        """Pass the request on (``await call_next(edit)``, then None), or return the answer
        to give instead (a response)."""
        raise NotImplementedError
