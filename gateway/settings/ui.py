"""``[ui]``: how the gateway's pages speak to people.

``language`` is the language of every page for everyone who has not chosen one on their
account page, and the home's language (notifications): ``auto`` (the default) lets each
browser's ``Accept-Language`` decide (and the first admin's choice the home's language);
``en``, ``nl`` or any other language with a catalog fixes it (:mod:`gateway.i18n`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from gateway.i18n import AUTO, available


class UiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = AUTO

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        value = value.strip().lower()
        if value != AUTO and value not in available():
            choices = ", ".join((AUTO, *available()))
            raise ValueError(f"unknown language {value!r}; the choices are: {choices}")
        return value
