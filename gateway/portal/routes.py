"""The login portal under ``/.gateway/``, as one router: log in (password, second factor,
JSON), log out, the account page, single sign-on (OIDC).

Every state change is protected against cross-site requests: the login form by a
double-submit token (a cookie only this site can set, echoed in the form), the JSON login
by requiring ``Content-Type: application/json`` (a cross-site page cannot send that
without a CORS preflight, which is never granted), and everything done while logged in by
the session's own CSRF token; logging out needs that token or a same-origin request. A
login always issues a new session token (no fixation).

Every guess of a secret - password, second-factor or recovery code, the password or code
that confirms a change - passes the one gate (:mod:`gateway.portal.guesses`, deciding in
:mod:`gateway.services.bans`): reserved before it is checked, refused alike (429) while
the account, the device or the address is banned. At most
:data:`~gateway.portal.login.MAX_PENDING_CHALLENGES` second-factor steps wait per account,
and at most :data:`~gateway.portal.oidc.OIDC_PENDING_PER_ADDRESS` /
:data:`~gateway.portal.oidc.OIDC_PENDING_MAX` single sign-ons. Sensitive changes need a
fresh proof (:mod:`gateway.portal.fresh_proof`). An OIDC callback is accepted only in the
browser that started the sign-in (the ``state`` cookie set by ``/.gateway/oidc/start``).

Where each part lives: :mod:`gateway.portal.login` (password, second factor, JSON login),
:mod:`gateway.portal.logout`, :mod:`gateway.portal.account` (password, authenticator,
recovery codes), :mod:`gateway.portal.oidc`, :mod:`gateway.portal.passkey_login` and
:mod:`gateway.portal.passkey_account` (passkeys), :mod:`gateway.portal.pages` (rendering);
the use cases behind them in :mod:`gateway.services.login` and
:mod:`gateway.services.oidc_accounts`.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.portal import (
    account,
    account_sessions,
    enrol,
    login,
    logout,
    menu,
    oidc,
    passkey_account,
    passkey_login,
)

router = APIRouter()
for part in (
    login,
    passkey_login,
    enrol,
    logout,
    account,
    account_sessions,
    passkey_account,
    menu,
    oidc,
):
    router.include_router(part.router)
