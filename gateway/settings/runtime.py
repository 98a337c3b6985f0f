"""Settings a person changes at run time, and which value is in force.

A few settings can be changed from the admin app while the gateway runs
(:data:`RUNTIME_KEYS`); those changes are stored in the database
(:mod:`gateway.services.runtime_settings`). For each of them this module answers the one
question "what is the value in force, and where does it come from":

1. The environment (``CEMM_GATEWAY_WIREGUARD__ENABLED``, or a JSON section variable that
   holds the key) wins; the setting is *locked*, and the lock names the variable.
2. Then the configuration file (a key written in it, even with its default value); locked,
   naming the file and the key.
3. For ``notify.urls``: ``notify.urls_file`` set in the file or the environment locks the
   receivers too (the secret file is where they are kept).
4. Then the value stored at run time, if it is still valid.
5. Then the built-in default.

A value from 1-3 cannot be changed at run time; the admin app shows it locked with
:attr:`Source.text`. Which keys were written where is what :mod:`gateway.settings.loading`
found while reading (the environment by
:func:`~gateway.settings.loading.variable_for`, the file's keys are those the section
models were given: pydantic's ``model_fields_set``).

The sample ``config/gateway.toml`` leaves these keys commented out, so a fresh install can
change them from the admin app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from gateway.settings.keys import toml_example
from gateway.settings.loading import config_file_of, variable_for
from gateway.settings.model import Settings, SettingsError

logger = logging.getLogger("cemm_gateway.settings")

#: The settings the admin app can change, by dotted key.
RUNTIME_KEYS: tuple[str, ...] = (
    "wireguard.enabled",
    "wireguard.endpoint",
    "notify.urls",
    "notify.events",
    "notify.cemm_down_after",
)

Origin = Literal["environment", "file", "stored", "default"]


@dataclass(frozen=True)
class Source:
    """Where the value in force of one setting comes from.

    ``text`` says it for a person: ``environment variable CEMM_GATEWAY_WIREGUARD__ENABLED``,
    ``/etc/cemm/gateway.toml: [wireguard] enabled``.
    """

    origin: Origin
    text: str

    @property
    def locked(self) -> bool:
        """Set in the environment or the file: the admin app cannot change it."""
        return self.origin in ("environment", "file")


def _section_and_name(key: str) -> tuple[str, str]:
    section, _, name = key.rpartition(".")
    return section, name


def _written(settings: Settings, key: str) -> bool:
    """Whether ``key`` was given when ``settings`` was made (file, environment or code)."""
    section, name = _section_and_name(key)
    model: BaseModel = getattr(settings, section)
    return name in model.model_fields_set


def _where(settings: Settings, key: str) -> Source | None:
    """The environment variable or the file that sets ``key``; None if neither does."""
    variable = variable_for(key)
    if variable is not None:
        return Source("environment", f"environment variable {variable}")
    if _written(settings, key):
        section, name = _section_and_name(key)
        path = config_file_of(settings)
        where = f"{path}: " if path is not None else "the configuration: "
        return Source("file", f"{where}[{section}] {name}")
    return None


def lock_of(settings: Settings, key: str) -> Source | None:
    """The file or environment setting that locks ``key``, or None if it can be changed.

    ``settings`` are the settings as loaded (not yet with run-time values applied).
    """
    if key not in RUNTIME_KEYS:
        raise KeyError(key)
    found = _where(settings, key)
    if found is None and key == "notify.urls" and settings.notify.urls_file:
        held = _where(settings, "notify.urls_file")
        text = held.text if held is not None else "[notify] urls_file"
        found = Source("file", f"{text} (the receivers are read from {settings.notify.urls_file})")
    return found


def source_of(settings: Settings, stored: Mapping[str, Any], key: str) -> Source:
    """Where the value in force of ``key`` comes from (the module's docstring has the order)."""
    found = lock_of(settings, key)
    if found is not None:
        return found
    if key in stored:
        return Source("stored", "changed in the admin app")
    return Source("default", "the default")


def validate(settings: Settings, key: str, value: Any) -> Any:
    """``value`` as ``key`` holds it, checked by the same rules as the file's; raises
    :class:`SettingsError` with a message naming the key and showing an example."""
    if key not in RUNTIME_KEYS:
        raise SettingsError(f"{key} cannot be changed at run time")
    section, name = _section_and_name(key)
    current: BaseModel = getattr(settings, section)
    try:
        checked = type(current).model_validate({**current.model_dump(), name: value})
    except ValidationError as error:
        messages = [
            str(item["msg"]).removeprefix("Value error, ")
            for item in error.errors()
            if item["loc"][:1] == (name,)
        ] or [str(error)]
        raise SettingsError(f"{key}: {'; '.join(messages)}; example: {toml_example(key)}") from None
    return getattr(checked, name)


def apply(settings: Settings, stored: Mapping[str, Any]) -> Settings:
    """``settings`` with the stored run-time values of the keys nothing locks.

    A stored value that is no longer valid (the rules changed) is skipped with a warning;
    the rest apply.
    """
    sections: dict[str, dict[str, Any]] = {}
    for key, value in stored.items():
        if key not in RUNTIME_KEYS or lock_of(settings, key) is not None:
            continue
        try:
            checked = validate(settings, key, value)
        except SettingsError as error:
            logger.warning("ignoring the value stored in the database: %s", error)
            continue
        section, name = _section_and_name(key)
        sections.setdefault(section, {})[name] = checked
    if not sections:
        return settings
    update = {
        section: getattr(settings, section).model_copy(update=values)
        for section, values in sections.items()
    }
    return settings.model_copy(update=update)
