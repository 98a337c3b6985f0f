"""What the web app's routes share: settings, the database worker, the proxy's view of
logins, and helpers to read a request as the proxy forwarded it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import SessionInfo
from gateway.policy.identity import identify
from gateway.proxy.state import ProxyState
from gateway.settings import Settings
from gateway.store.worker import DbWorker


@dataclass
class PendingSecondFactor:
    user_id: int
    user_name: str
    next_url: str
    expires_at: float
    attempts: int = 0


@dataclass
class WebContext:
    settings: Settings
    db: DbWorker
    state: ProxyState
    # Reload the proxy's login snapshot now (after a login, logout or revoke here).
    auth_changed: Callable[[], None]
    status: Callable[[], dict[str, Any]]
    bruteforce: BruteForcePolicy
    never_ban: CompiledAllowlist[Any]
    second_factor: dict[str, PendingSecondFactor] = field(default_factory=dict)
    oidc: Any = None  # gateway.auth.oidc.OidcClient when [oidc] enabled
    oidc_pending: dict[str, Any] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.state.session_cookie.startswith("__Host-")

    def secure_cookies(self, request: Request) -> bool:
        """Whether cookies set in answer to ``request`` get ``Secure``: always with the
        gateway's own TLS (the ``__Host-`` name needs it), and when the browser reached a
        trusted reverse proxy over HTTPS (the proxy's ``X-Forwarded-Proto``)."""
        return self.tls or request_scheme(request) == "https"

    def current_session(self, request: Request) -> SessionInfo | None:
        """The usable session of the request's cookie, as the proxy sees it (the one
        identity decision, :func:`gateway.policy.identity.identify`)."""
        now = time.time()
        identity = identify(
            session_token=request.cookies.get(self.state.session_cookie),
            authorization=None,
            auth=self.state.auth,
            last_seen=self.state.session_activity,
            now=now,
        )
        if isinstance(identity, str) or identity.session is None:
            return None
        self.state.session_activity[identity.session.id] = now
        return identity.session

    def prune(self, now: float) -> None:
        for key in [k for k, v in self.second_factor.items() if v.expires_at <= now]:
            del self.second_factor[key]
        for key in [k for k, v in self.oidc_pending.items() if v.created_at + 600 <= now]:
            del self.oidc_pending[key]


def client_address(request: Request) -> str:
    """The client as the proxy determined it (it overwrote X-Forwarded-For)."""
    return request.headers.get("x-forwarded-for", "")


def user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


def request_scheme(request: Request) -> str:
    return request.headers.get("x-forwarded-proto", "http")
