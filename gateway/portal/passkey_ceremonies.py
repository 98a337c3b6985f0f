"""What the portal's passkey routes share: the relying party of a request, the ceremonies
waiting for the browser's answer, and reading a JSON body.

**The relying party** of a request (:func:`gateway.portal.pages.relying_party`) is decided by
:func:`gateway.policy.passkeys.relying_party` from the host the browser used (``Host``, or
a trusted proxy's ``X-Forwarded-Host``, which the proxy vetted), the scheme (the gateway's
own TLS, or a trusted proxy's ``X-Forwarded-Proto``) and the gateway's own names. When it
is :class:`~gateway.policy.passkeys.NoPasskeys`, pages offer TOTP and say why
(:func:`unavailable_text`).

**Ceremonies** (:class:`Ceremonies`) live in memory, one per ticket, for
``CEREMONY_TTL`` seconds, and are taken out when an answer is checked (single use: a
replayed answer finds none). After a restart a ceremony starts again. Asking for the
options of a login with a passkey alone needs nothing but the login page's token, so
anyone on an allowed network can ask as often as they like; that must neither fill the
memory nor end the ceremonies other people are in the middle of:

- ceremonies bound to something (a session making a passkey, an enrolment, a
  second-factor step) wait apart from the unbound ones (a login with a passkey alone),
  so a flood of the latter never ends the former;
- each kind holds at most ``MAX_CEREMONIES``, and at most ``PER_ADDRESS`` from one client
  address (for IPv6 one /64, which one machine usually holds whole): a new one ends that
  address's oldest first, then the oldest of its kind.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from gateway.policy.credentials import SessionInfo
from gateway.policy.passkeys import NoPasskeys
from gateway.portal.pages import relying_party, web_context
from gateway.services import passkeys, users
from gateway.services.errors import ServiceError
from gateway.services.passkeys import Ceremony
from gateway.services.users import User
from gateway.web.i18n import gettext as _
from gateway.web.times import when

CEREMONY_TTL = 300.0
MAX_CEREMONIES = 1000
PER_ADDRESS = 10


@dataclass(frozen=True)
class Waiting:
    """A ceremony waiting for the browser: for whom (a session, a second-factor step, or
    nobody yet for a login with a passkey alone), from which client address, until when."""

    ceremony: Ceremony
    expires_at: float
    bound_to: str = ""
    address: str = ""


def _address_key(address: str) -> str:
    """The client as the per-address cap counts it: an IPv4 address, or an IPv6 /64."""
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(found, ipaddress.IPv6Address):
        if found.ipv4_mapped is not None:
            return str(found.ipv4_mapped)
        return str(ipaddress.IPv6Network((found, 64), strict=False))
    return str(found)


class Ceremonies:
    def __init__(self) -> None:
        self._bound: dict[str, Waiting] = {}
        self._unbound: dict[str, Waiting] = {}

    def _pool(self, bound_to: str) -> dict[str, Waiting]:
        return self._bound if bound_to else self._unbound

    def add(
        self,
        ceremony: Ceremony,
        *,
        bound_to: str = "",
        ticket: str | None = None,
        address: str = "",
    ) -> str:
        now = time.time()
        pool = self._pool(bound_to)
        for key in [k for k, w in pool.items() if w.expires_at <= now]:
            del pool[key]
        ticket = ticket or secrets.token_urlsafe(24)
        self._bound.pop(ticket, None)
        self._unbound.pop(ticket, None)
        address = _address_key(address)
        same_address = [k for k, w in pool.items() if w.address == address]
        for key in same_address[: max(0, len(same_address) - PER_ADDRESS + 1)]:
            del pool[key]
        while len(pool) >= MAX_CEREMONIES:
            del pool[next(iter(pool))]
        pool[ticket] = Waiting(ceremony, now + CEREMONY_TTL, bound_to, address)
        return ticket

    def take(self, ticket: str, *, bound_to: str = "") -> Ceremony | None:
        """The ceremony of ``ticket`` (once), if it is still waiting and bound to ``bound_to``."""
        waiting = self._pool(bound_to).pop(ticket, None) if ticket else None
        if waiting is None or waiting.expires_at <= time.time():
            return None
        if not secrets.compare_digest(waiting.bound_to, bound_to):
            return None
        return waiting.ceremony


def ceremonies(request: Request) -> Ceremonies:
    """The app's waiting ceremonies (one per web app)."""
    state = request.app.state
    found = getattr(state, "passkey_ceremonies", None)
    if not isinstance(found, Ceremonies):
        found = state.passkey_ceremonies = Ceremonies()
    return found


def unavailable_text(reason: NoPasskeys) -> str:
    """Why this page offers no passkeys, in words the person can act on."""
    if reason.reason == "not_https":
        return _(
            "Passkeys need a secure connection, and this page came over plain HTTP. "
            "Open the gateway by its HTTPS address, or use an authenticator app."
        )
    if reason.reason == "ip_address":
        return _(
            "Passkeys need a host name, and this page was opened by its IP address. "
            "Open the gateway by its name, or use an authenticator app."
        )
    return _(
        "Passkeys work only under the gateway's own names (public_url, public_hostnames "
        "or the certificate's names), and this page was opened under another one."
    )


async def page_context(request: Request, session: SessionInfo) -> dict[str, Any]:
    """What the account page shows about passkeys."""
    found = await web_context(request).db.run(passkeys.list_passkeys, user_id=session.user_id)
    rp = relying_party(request)
    return {
        "passkeys": [
            {
                "id": p.id,
                "name": p.name,
                "rp_id": p.rp_id,
                "created_at": when(p.created_at),
                "last_used_at": when(p.last_used_at) if p.last_used_at else "-",
            }
            for p in found
        ],
        "passkey_unavailable": unavailable_text(rp) if isinstance(rp, NoPasskeys) else None,
    }


def json_body(request_body: bytes, content_type: str) -> dict[str, Any] | None:
    """The JSON object of a request sent as ``application/json`` (a cross-site page cannot
    send that without a CORS preflight, never granted); None otherwise."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return None
    try:
        found = json.loads(request_body)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def refusal(status: int, error: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


async def finish_registration(
    request: Request, key: str, bound_to: str, body: dict[str, Any], *, user_id: int, actor: str
) -> JSONResponse | None:
    """The registration ceremony ``key`` (waiting for ``bound_to``) answered by the browser's
    ``body``: None once the passkey is stored, else the refusal to send back."""
    ceremony = ceremonies(request).take(key, bound_to=bound_to)
    credential = body.get("credential")
    if ceremony is None or not isinstance(credential, dict):
        return refusal(400, "expired", _("The passkey request expired; please try again."))
    try:
        await web_context(request).db.run(
            passkeys.finish_registration,
            user_id,
            ceremony,
            credential,
            name=str(body.get("name", "")),
            actor=actor,
        )
    except ServiceError as error:
        return refusal(400, error.code, error.translated())
    return None


async def second_step_context(request: Request, user_id: int) -> dict[str, Any]:
    """What the second-factor page shows: the code field (the account has TOTP), the
    passkey button (it has passkeys and this page can use them), or why it cannot."""
    context = web_context(request)
    user = await context.db.run(users.get_user_by_id, user_id)
    has_passkeys = await context.db.run(passkeys.has_passkeys, user_id)
    rp = relying_party(request)
    return {
        "has_totp": bool(user and user.totp_enabled),
        "passkey_offered": has_passkeys and not isinstance(rp, NoPasskeys),
        "passkey_unavailable": (
            unavailable_text(rp) if has_passkeys and isinstance(rp, NoPasskeys) else None
        ),
    }


async def needs_second_step(request: Request, user: User) -> bool:
    """Whether a right password is only the first step: the account has TOTP or a passkey."""
    if user.totp_enabled:
        return True
    return bool(await web_context(request).db.run(passkeys.has_passkeys, user.id))
