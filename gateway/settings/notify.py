"""``[notify]``: where the gateway sends notifications to the owner, and about what.

``urls`` are Apprise URLs (``ntfy://``, ``tgram://``, ``mailto://``, ``json://`` ...); they
carry secrets, so ``urls_file`` (a secret file, one URL a line, ``#`` comments) may hold
them instead; both together are used together. ``events`` are the notifiable events by
their audit-log names (:data:`gateway.notify.events.EVENTS`); empty means every one.
``cemm_down_after`` is how long the CEMM must not answer before the owner hears of it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.notify.events import EVENTS, unknown


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str] = Field(default_factory=list, repr=False)
    urls_file: str = ""
    events: list[str] = Field(default_factory=list)
    cemm_down_after: float = Field(default=120.0, ge=0, le=86400)

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if wrong := unknown(value):
            raise ValueError(
                f"unknown event(s) {', '.join(wrong)}; the events are: {', '.join(EVENTS)}"
            )
        return value
