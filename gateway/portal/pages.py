"""How the portal answers with a page: its templates, the login page (with the
double-submit token of the login form), the message page, and the small helpers every
portal route shares.

The portal's templates extend ``base.html``, which fills in the gateway's one page frame
(``gateway/web/templates/frame.html``, shared with the admin app).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from gateway.auth import tokens
from gateway.policy.passkeys import NoPasskeys, RelyingParty
from gateway.policy.passkeys import relying_party as decide_relying_party
from gateway.web import i18n
from gateway.web.browsers import browser_name
from gateway.web.context import WebContext, request_scheme

HERE = Path(__file__).resolve().parent
WEB_TEMPLATES = HERE.parent / "web" / "templates"
templates = i18n.templates(HERE / "templates", WEB_TEMPLATES)
templates.env.filters["browser"] = browser_name

LOGIN_CSRF_COOKIE = "cemm_login_csrf"
LOGIN_PAGE_CSRF_MAX_AGE = 3600
ACCOUNT_PAGE = "/.gateway/account"


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def relying_party(request: Request) -> RelyingParty | NoPasskeys:
    """Where this request's page may use passkeys (:mod:`gateway.policy.passkeys`): from the
    host the browser used (``Host``, or the ``X-Forwarded-Host`` the proxy vetted), the
    scheme, and the gateway's own names."""
    context = web_context(request)
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    scheme = "https" if context.tls or request_scheme(request) == "https" else "http"
    return decide_relying_party(host, scheme, context.state.access.names)


def safe_next(value: str | None) -> str:
    """A path on this site to go to afterwards (anything else becomes ``/``)."""
    return tokens.is_safe_next(value or "/")


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )


def message_page(
    request: Request,
    *,
    title: str,
    message: str,
    link_href: str | None,
    link_text: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = {"title": title, "message": message, "link_href": link_href}
    if link_text is not None:
        page["link_text"] = link_text
    return render(request, "message.html", page, status_code)


def set_login_csrf(request: Request, response: HTMLResponse, csrf: str, max_age: int) -> None:
    """The double-submit cookie of a login form: only this site can set it, the form
    echoes it (``SameSite=Strict``, only under ``/.gateway/``)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/.gateway/",
        httponly=True,
        samesite="strict",
        secure=web_context(request).secure_cookies(request),
    )


def login_csrf_ok(request: Request, submitted: str) -> bool:
    return tokens.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), submitted)


def login_page(
    request: Request,
    *,
    next_url: str,
    error: str | None = None,
    notice: str | None = None,
    username: str | None = None,
    retry_after: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The login form (a new double-submit token each time); ``retry_after``: the gate
    refuses guesses for that many seconds (also the ``Retry-After`` header)."""
    context = web_context(request)
    csrf = tokens.new_csrf_token()
    response = render(
        request,
        "login.html",
        {
            "next": next_url,
            "csrf_token": csrf,
            "error": error,
            "notice": notice,
            "username": username,
            "retry_after": retry_after,
            "oidc_enabled": context.oidc is not None,
            "oidc_label": context.settings.oidc.label,
            "passkeys_here": isinstance(relying_party(request), RelyingParty),
        },
        status_code,
    )
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    set_login_csrf(request, response, csrf, LOGIN_PAGE_CSRF_MAX_AGE)
    return response
