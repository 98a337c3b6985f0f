"""Fresh proof: a sensitive change needs the password or a second factor from the last
five minutes, not just a session (a borrowed unlocked phone, a stolen session cookie).

``await require_fresh_proof(request, session, then=PATH)`` returns None when the session
proved its user within ``FRESH_PROOF_MAX_AGE`` seconds, else the answer that asks for
proof: for an account with a password (or a second factor), a page asking for it that
posts to ``/.gateway/account/confirm`` and then returns to ``then``; for an account
that signs in only through OIDC, a redirect to the provider with ``prompt=login``. Every
guess made there passes the one gate (:mod:`gateway.portal.guesses`).

A proof is a completed login with the password (and second factor), an OIDC sign-in with
``prompt=login``, a confirmation on that page, or a correct password or code typed into
the change itself (:func:`prove`). Proofs live in memory per session: after a restart a
sensitive change asks again. Used by: new recovery codes, turning the second factor off
(before a new one can be set up), changing the password; later passkeys and backups.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from gateway.policy.credentials import SessionInfo
from gateway.portal.guesses import guess
from gateway.portal.pages import templates
from gateway.services import login, users
from gateway.web.context import WebContext

FRESH_PROOF_MAX_AGE = 300.0


class FreshProofs:
    """When each session last proved its user, for at most ``FRESH_PROOF_MAX_AGE``."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def record(self, session_id: str, now: float) -> None:
        for key in [k for k, at in self._at.items() if at <= now - FRESH_PROOF_MAX_AGE]:
            del self._at[key]
        self._at[session_id] = now

    def fresh(self, session_id: str, now: float) -> bool:
        return self._at.get(session_id, float("-inf")) > now - FRESH_PROOF_MAX_AGE


def proofs(request: Request) -> FreshProofs:
    """The app's record of proofs (one per web app)."""
    state = request.app.state
    found = getattr(state, "fresh_proofs", None)
    if not isinstance(found, FreshProofs):
        found = state.fresh_proofs = FreshProofs()
    return found


def record_proof(request: Request, session_id: str) -> None:
    proofs(request).record(session_id, time.time())


async def prove(request: Request, session: SessionInfo, *, password: str, code: str) -> bool:
    """Check an offered password or second-factor code through the gate; a right one is a
    fresh proof. Raises :class:`gateway.portal.guesses.GuessRefused` when the gate refuses."""
    name, user_id = session.user_name, session.user_id
    found: object
    if password:
        found = await guess(
            request, account=name, verify=lambda conn: login.check_password(conn, name, password)
        )
    elif code:
        found = await guess(
            request,
            account=name,
            verify=lambda conn: login.check_second_factor(conn, user_id, code),
        )
    else:
        return False
    if found is None:
        return False
    record_proof(request, session.id)
    return True


async def require_fresh_proof(
    request: Request, session: SessionInfo, *, then: str
) -> Response | None:
    """None if the session proved its user within five minutes; else the answer that asks."""
    if proofs(request).fresh(session.id, time.time()):
        return None
    context: WebContext = request.app.state.context
    user = await context.db.run(users.get_user_by_id, session.user_id)
    if user is not None and not user.has_password and not user.totp_enabled and context.oidc:
        query = urlencode({"next": then, "reauthenticate": "1"})
        return RedirectResponse(f"/.gateway/oidc/start?{query}", status_code=303)
    return confirm_page(request, session, user, then=then)


def confirm_page(
    request: Request,
    session: SessionInfo,
    user: users.User | None,
    *,
    then: str,
    error: str | None = None,
    retry_after: int | None = None,
    status_code: int = 401,
) -> Response:
    """The page asking for the password or a code before ``then`` (a path on the gateway)."""
    return templates.TemplateResponse(
        request,
        "confirm.html",
        {
            "csrf_token": session.csrf_token,
            "next": then,
            "has_password": bool(user and user.has_password),
            "has_totp": bool(user and user.totp_enabled),
            "error": error,
            "retry_after": retry_after,
        },
        status_code=status_code,
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )
