"""The language of each request to the web app (:func:`gateway.i18n.choose`).

A middleware (:class:`ReadersLanguage`) finds it - the signed-in account's choice, else
``[ui] language``, else the browser's ``Accept-Language``, else English - and translates
everything the request makes into it (pages, and the messages the web layer shows)
through :func:`gateway.i18n.use_language`: a context variable, so requests served at the
same time each keep their own. Static files skip the look-up. Every page answers with
``Content-Language`` and ``Vary: Accept-Language``.
"""

from __future__ import annotations

import time

from fastapi import Request
from starlette.datastructures import MutableHeaders

from gateway import i18n
from gateway.i18n import N_
from gateway.policy.identity import identify
from gateway.services import languages
from gateway.web.asgi import Next, RequestMiddleware
from gateway.web.context import WebContext

_STATIC = ("/.gateway/static/", "/static/")

#: Each language by its own name, so a reader finds theirs whatever the page's language.
NATIVE_NAMES = {"en": "English", "nl": "Nederlands", "de": "Deutsch", "fr": "Français"}


#: Values pages show as words (``{{ _(value) }}``): roles, ban kinds, peer states.
SHOWN_VALUES = (
    N_("admin"),
    N_("user"),
    N_("viewer"),
    N_("address"),
    N_("other"),
    N_("enabled"),
    N_("disabled"),
    N_("expired"),
)


def language_choices() -> list[tuple[str, str]]:
    """``(value, label)`` for the language field: automatic first, then every catalog."""
    automatic = (i18n.AUTO, i18n.gettext("Automatic (the browser's language)"))
    return [automatic, *((code, NATIVE_NAMES.get(code, code)) for code in i18n.available())]


async def account_language(context: WebContext, request: Request) -> str | None:
    """The language the signed-in account chose (None: no account, or ``auto``)."""
    identity = identify(
        session_token=request.cookies.get(context.state.session_cookie),
        authorization=None,
        auth=context.state.auth,
        last_seen=context.state.session_activity,
        now=time.time(),
    )
    if isinstance(identity, str) or identity.session is None or identity.session.user_id < 0:
        return None
    return await context.db.run(languages.language_of, identity.session.user_id)


async def request_language(context: WebContext, request: Request) -> str:
    return i18n.choose(
        account=await account_language(context, request),
        configured=context.settings.ui.language,
        accept_language=request.headers.get("accept-language"),
    )


class ReadersLanguage(RequestMiddleware):
    """Translates what each request makes into its reader's language, and says which."""

    async def handle(self, request: Request, call_next: Next) -> None:
        if request.url.path.startswith(_STATIC):
            await call_next(None)
            return
        with i18n.use_language(await request_language(self.context, request)) as language:

            async def say_which(headers: MutableHeaders) -> None:
                headers.setdefault("Content-Language", language)
                headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Accept-Language"])

            await call_next(say_which)
