"""The language field of the account page: ``POST /.gateway/account/language``.

The choice is ``auto`` (the browser's ``Accept-Language`` decides, or ``[ui] language``)
or a language with a catalog (:mod:`gateway.i18n`); it applies from the answer to this
request on, to every page the account opens (:mod:`gateway.web.language`).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gateway import i18n
from gateway.i18n import gettext as _
from gateway.portal.account import _session_for_change, account_page
from gateway.portal.pages import web_context
from gateway.services import languages
from gateway.services.errors import ServiceError
from gateway.web.context import client_address

router = APIRouter(prefix="/.gateway")


@router.post("/account/language")
async def set_language(
    request: Request, language: str = Form(""), csrf_token: str = Form("")
) -> Response:
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = web_context(request)
    try:
        chosen = await context.db.run(
            languages.set_language,
            session.user_id,
            language,
            client_address=client_address(request),
        )
    except ServiceError as error:
        return await account_page(request, session, error=error.translated(), status_code=400)
    # This answer is already in the new language.
    with i18n.use_language(
        i18n.choose(
            account=chosen,
            configured=context.settings.ui.language,
            accept_language=request.headers.get("accept-language"),
        )
    ):
        return await account_page(request, session, notice=_("Language saved."))
