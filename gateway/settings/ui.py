"""``[ui]``: how the gateway's pages speak to people, what they add to the CEMM's pages, and
how they show times.

- ``language`` is the language of every page for everyone who has not chosen one on their
  account page, and the home's language (notifications): ``auto`` (the default) lets each
  browser's ``Accept-Language`` decide (and the first admin's choice the home's language);
  ``en``, ``nl`` or any other language with a catalog fixes it (:mod:`gateway.i18n`).
- ``menu`` (default on) puts the gateway's menu on every CEMM page the gateway serves as
  HTML: a small fixed button that opens who is signed in, the account page, log out and,
  for admins, the admin app (``addons/gateway_menu.py``). Off, CEMM pages pass unchanged
  (except the WebSocket fix-up that ``[tls] single_port`` may need).
- ``timezone``: the home's time zone for every time a page shows (an IANA name such as
  ``Europe/Amsterdam``); empty: from ``TZ``, else ``Europe/Amsterdam``
  (:mod:`gateway.web.times`).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from gateway.i18n import AUTO, available


class UiSettings(BaseModel):
    """The pages' language, the gateway menu on CEMM pages, and the home's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = AUTO
    menu: bool = True
    timezone: str = ""

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        value = value.strip().lower()
        if value != AUTO and value not in available():
            choices = ", ".join((AUTO, *available()))
            raise ValueError(f"unknown language {value!r}; the choices are: {choices}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"'{value}' is not a time zone the gateway knows; give an IANA name"
                ) from None
        return value
