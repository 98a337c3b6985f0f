"""``[ui]``: what the gateway adds to the pages people see.

``menu`` (default on) puts the gateway's menu on every CEMM page the gateway serves as HTML:
a small fixed button that opens who is signed in, the account page, log out and, for
admins, the admin app (``addons/page_scripts.py``). Off, CEMM pages pass unchanged (except
the WebSocket fix-up that ``[tls] single_port`` may need).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class UiSettings(BaseModel):
    """The pages' extras: the gateway menu on CEMM pages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    menu: bool = True
