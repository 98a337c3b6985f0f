"""The admin app (FastAPI), served by uvicorn on an internal loopback port.

Clients never reach it directly: the gateway's admin listener is a mitmproxy reverse
listener like the web and ws ports, so the same connection guard (``[allowlist]
admin_networks``) and the same TLS set-up cover it. The proxy adds a per-process secret
header to every request it forwards here; a request without it (anything else on this
host talking to the loopback port) is refused, and the client address comes from the
``X-Forwarded-For`` the proxy itself set.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from gateway.proxy.errorpages import SECURITY_HEADERS

INTERNAL_HEADER = "x-cemm-gateway-internal"

StatusProvider = Callable[[], dict[str, Any]]


def create_admin_app(*, internal_secret: str, status: StatusProvider) -> FastAPI:
    app = FastAPI(title="cemm-gateway admin", version="0.1.0", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def front_door_only(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        presented = request.headers.get(INTERNAL_HEADER, "")
        if not hmac.compare_digest(presented.encode(), internal_secret.encode()):
            return JSONResponse({"detail": "not through the gateway"}, status_code=403)
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """The gateway is up. The CEMM's state is reported, never a reason to fail."""
        return {"status": "ok", **status()}

    return app
