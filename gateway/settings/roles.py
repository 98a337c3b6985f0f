"""``[roles]``: what the ``viewer`` role may do beyond looking.

``viewer_websocket_messages`` says whether a viewer's WebSocket messages reach the CEMM:

- ``"allow"`` (the default): they pass. The CEMM's live-data protocol is not public and its
  page may have to ask for the data it shows, so a viewer's page keeps working. A viewer can
  then send the CEMM whatever its WebSocket accepts - only the HTTP side is read-only.
- ``"drop"``: every message from a viewer's browser is dropped at the gateway; the viewer
  only receives what the CEMM pushes unasked. Safe, but a page that has to ask may stay empty.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class RolesSettings(BaseModel):
    """What the ``viewer`` role may do on the CEMM's WebSocket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    viewer_websocket_messages: Literal["allow", "drop"] = "allow"
