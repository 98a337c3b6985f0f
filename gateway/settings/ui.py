"""``[ui]``: what the gateway adds to the pages people see, and how it shows times.

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


class UiSettings(BaseModel):
    """The pages' extras: the gateway menu on CEMM pages, and the home's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    menu: bool = True
    timezone: str = ""

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
