"""Setting up a second factor right after a password login, when
``[auth] require_second_factor`` says the account must have one and it has none
(:func:`gateway.policy.second_factor.must_enrol`).

Instead of a session the browser gets an enrolment: a random token in a cookie
(``SameSite=Strict``, only under ``/.gateway/``, ``ENROLMENT_TTL`` seconds) naming the
account, where to go afterwards, and the enrolment's own CSRF token. With it the browser
reaches only the enrolment page (:mod:`gateway.portal.enrol`): nothing of the CEMM, no
account page, no admin app. The session starts once an authenticator app or a passkey is
set up. At most ``MAX_ENROLMENTS`` wait; a new one ends the oldest. They live in memory:
after a restart the person logs in again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from gateway.policy.second_factor import must_enrol
from gateway.portal.pages import web_context
from gateway.services.users import User

ENROLMENT_COOKIE = "cemm_enrol"
ENROLMENT_TTL = 900.0
MAX_ENROLMENTS = 200
ENROL_PAGE = "/.gateway/enrol"


@dataclass
class Enrolment:
    user_id: int
    user_name: str
    next_url: str
    csrf_token: str
    expires_at: float


def _waiting(request: Request) -> dict[str, Enrolment]:
    state = request.app.state
    found = getattr(state, "enrolments", None)
    if not isinstance(found, dict):
        found = state.enrolments = {}
    return found


def required(request: Request, user: User) -> bool:
    """Whether this account must set up a second factor now (it has none: the caller
    asked :func:`gateway.portal.passkey_ceremonies.needs_second_step` first)."""
    requirement = web_context(request).settings.auth.require_second_factor
    return must_enrol(requirement, role=user.role, has_second_factor=False)


def start(request: Request, user: User, next_url: str) -> Response:
    """The enrolment cookie and the way to the enrolment page (no session)."""
    waiting, now = _waiting(request), time.time()
    for key in [k for k, e in waiting.items() if e.expires_at <= now or e.user_id == user.id]:
        del waiting[key]
    while len(waiting) >= MAX_ENROLMENTS:
        del waiting[next(iter(waiting))]
    token = secrets.token_urlsafe(24)
    waiting[token] = Enrolment(
        user.id, user.name, next_url, secrets.token_urlsafe(24), now + ENROLMENT_TTL
    )
    response = RedirectResponse(ENROL_PAGE, status_code=303)
    response.set_cookie(
        ENROLMENT_COOKIE,
        token,
        max_age=int(ENROLMENT_TTL),
        path="/.gateway/",
        httponly=True,
        samesite="strict",
        secure=web_context(request).secure_cookies(request),
    )
    return response


def current(request: Request) -> tuple[str, Enrolment] | None:
    """The browser's waiting enrolment (its token and itself), if any."""
    token = request.cookies.get(ENROLMENT_COOKIE, "")
    found = _waiting(request).get(token) if token else None
    if found is None or found.expires_at <= time.time():
        return None
    return token, found


def finish(request: Request, token: str, response: Response) -> None:
    """The enrolment is done (a session was started): forget it and its cookie."""
    _waiting(request).pop(token, None)
    response.delete_cookie(ENROLMENT_COOKIE, path="/.gateway/")
