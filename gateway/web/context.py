"""What the web app's routes share: settings, the database worker, the proxy's view of
logins, and helpers to read a request as the proxy forwarded it.

The routes read the proxy's state (:class:`~gateway.proxy.state.ProxyState`) and never
write its snapshots: a change to logins goes through :class:`~gateway.logins.Logins` -
:meth:`WebContext.session_started` after a login, :meth:`WebContext.session_ended` after a
logout or revoke of one session (both in memory, at once), :meth:`WebContext.auth_changed`
after anything else (a re-read off the event loop, in force before the web app answers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.logins import Logins
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import SessionInfo
from gateway.policy.identity import identify
from gateway.proxy.state import ProxyState
from gateway.settings import Settings
from gateway.status import GatewayStatus
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
    logins: Logins
    # What the running gateway reports about itself (the dashboard, /healthz, /metrics).
    status: Callable[[], GatewayStatus]
    bruteforce: BruteForcePolicy
    never_ban: CompiledAllowlist[Any]
    second_factor: dict[str, PendingSecondFactor] = field(default_factory=dict)
    oidc: Any = None  # gateway.auth.oidc_client.OidcClient when [oidc] enabled
    oidc_pending: dict[str, Any] = field(default_factory=dict)

    def auth_changed(self) -> None:
        """Users, roles, tokens or several sessions changed here: the proxy reads its
        logins again (off the event loop; the web app answers once it is in force)."""
        self.logins.changed()

    def session_started(self, token: str, info: SessionInfo) -> None:
        """A login here: its session admits from the next request on."""
        self.logins.session_started(token, info)

    def session_ended(self, session_id: str) -> None:
        """A logout or revoke of one session here: it admits nothing from now on."""
        self.logins.session_ended(session_id)

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
        self.state.touch_session(identity.session.id, now)
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
