"""Reading the settings: the TOML file, then the ``CEMM_GATEWAY_*`` environment, validated.

:func:`load_settings` is the one reader. Whatever is wrong comes back as one
:class:`~gateway.settings.model.SettingsError` listing every problem, each line naming the
key - or the environment variable, when the value came from there - and showing a valid
example written the same way; an unknown key or variable is an error, never ignored.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import SettingsError as PydanticSettingsError

from gateway.settings.keys import (
    env_example,
    env_name,
    section_model,
    setting_field,
    setting_keys,
    toml_example,
    toml_value,
)
from gateway.settings.model import CONFIG_ENV, ENV_PREFIX, Settings, SettingsError


def _accepted(annotation: Any) -> list[str]:
    """The values a union field accepts, as a person writes them: ``true``, ``"auto"``."""
    if get_origin(annotation) in (Union, UnionType):
        return [text for member in get_args(annotation) for text in _accepted(member)]
    if get_origin(annotation) is Literal:
        return [toml_value(value) for value in get_args(annotation)]
    if annotation is bool:
        return ["true", "false"]
    names = {int: "a whole number", float: "a number", str: "a string"}
    return [names.get(annotation, getattr(annotation, "__name__", str(annotation)))]


def _resolve(loc: tuple[int | str, ...]) -> tuple[str, FieldInfo | None, tuple[int | str, ...]]:
    """Split an error location into the user's key and what pydantic added after it.

    ``("tls", "single_port", "literal['auto']")`` is ``tls.single_port`` and a union member;
    ``("auth", "trusted_networks", 0)`` is ``auth.trusted_networks`` and a list index.
    """
    model: type[BaseModel] | None = Settings
    names: list[str] = []
    field: FieldInfo | None = None
    for index, part in enumerate(loc):
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return ".".join(names), field, loc[index:]
        field = model.model_fields[part]
        names.append(part)
        model = section_model(field)
    return ".".join(names), field, ()


def _environment() -> dict[str, str]:
    """The ``CEMM_GATEWAY_*`` variables that name settings, by dotted key (lower case)."""
    found: dict[str, str] = {}
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != CONFIG_ENV:
            found[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = name
    return found


def environment_variables() -> list[str]:
    """The ``CEMM_GATEWAY_*`` variables in the environment that are (or try to be) settings:
    all but ``CEMM_GATEWAY_CONFIG``, sorted."""
    return sorted(_environment().values())


def _in_open_section(key: str) -> bool:
    """Whether ``key`` is one of the free-form keys of a section that takes any key (the
    DNS provider's options in ``[acme.dns]``)."""
    section, _, _ = key.rpartition(".")
    try:
        model = section_model(setting_field(section)) if section else None
    except KeyError:
        return False
    return model is not None and model.model_config.get("extra") == "allow"


def _unknown_environment() -> list[str]:
    """A line for each ``CEMM_GATEWAY_*`` variable that names no setting and no section:
    a typo (one underscore instead of two) would otherwise leave a rule unset unnoticed."""
    keys = setting_keys()
    known = set(keys) | {
        ".".join(key.split(".")[:depth]) for key in keys for depth in range(1, key.count(".") + 1)
    }
    names = {env_name(key)[len(ENV_PREFIX) :]: env_name(key) for key in keys}
    lines = []
    for key, variable in sorted(_environment().items()):
        if key in known or _in_open_section(key):
            continue
        close = difflib.get_close_matches(variable[len(ENV_PREFIX) :].upper(), names, n=1)
        hint = (
            f"; did you mean {names[close[0]]}?"
            if close
            else f"; settings are named like {env_name('upstream.host')}"
        )
        lines.append(f"  {variable}: not a setting of the gateway{hint}")
    return lines


def _from_environment(key: str, environment: dict[str, str]) -> str | None:
    """The variable that gave ``key`` its value, if the value came from the environment.

    Either the variable for the key itself, or one for an enclosing section whose JSON
    object holds the key.
    """
    if key in environment:
        return environment[key]
    parts = key.split(".")
    for length in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:length])
        if section not in environment:
            continue
        try:
            value: Any = json.loads(os.environ[environment[section]])
        except ValueError:
            return environment[section]
        for part in parts[length:]:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            return environment[section]
    return None


def variable_for(key: str) -> str | None:
    """The ``CEMM_GATEWAY_*`` variable that sets ``key`` now, if one does (the key's own, or
    a section's JSON object holding it)."""
    return _from_environment(key, _environment())


def config_file_of(settings: Settings) -> Path | None:
    """The configuration file ``settings`` were read from; None without one."""
    return settings.config_file


def _message(item: Any) -> str:
    """Pydantic's message, without its prefix or the names of Python classes."""
    if item["type"] == "path_type":
        return "must be a path, as a string"
    return str(item["msg"]).removeprefix("Value error, ")


def _error_line(key: str, message: str, known: bool, environment: dict[str, str]) -> str:
    variable = _from_environment(key, environment)
    name = f"{variable} ({key})" if variable else key
    if not known:
        return f"  {name or '(top level)'}: {message}"
    example = env_example(key) if variable else toml_example(key)
    # A validator's own example (of one list entry, say) is left out when this one shows it.
    message, _, own = message.partition("; example: ")
    if own and own not in example:
        message += f"; example: {own}"
    return f"  {name}: {message}; example: {example}"


def _format_error(error: ValidationError, source: str) -> str:
    environment = _environment()
    # Errors by key, in order: a union reports once per member, a list once per item.
    grouped: dict[str, list[tuple[dict[str, Any], FieldInfo | None, tuple[int | str, ...]]]] = {}
    unknown: list[str] = []
    for item in error.errors():
        if item["type"] == "extra_forbidden":
            unknown.append(".".join(str(part) for part in item["loc"]))
            continue
        key, field, rest = _resolve(item["loc"])
        grouped.setdefault(key, []).append((dict(item), field, rest))
    lines = [f"invalid configuration ({source}):"]
    for key, items in grouped.items():
        field = items[0][1]
        if field is not None and any(rest and isinstance(rest[0], str) for _, _, rest in items):
            # A union: each member's complaint alone is misleading; say what is accepted.
            *others, last = _accepted(field.annotation)
            message = f"must be {', '.join(others)} or {last}" if others else f"must be {last}"
        elif field is not None and section_model(field) is not None and not items[0][2]:
            message = f"must be a table of settings, the [{key}] section"
        else:
            messages = [_message(item) for item, _, _ in items]
            message = "; ".join(dict.fromkeys(messages))
        lines.append(_error_line(key, message, field is not None, environment))
    for key in unknown:
        message = "is not a known setting (see config/gateway.toml for every key)"
        lines.append(_error_line(key, message, False, environment))
    return "\n".join(lines)


def _is_complex(field: FieldInfo) -> bool:
    """Whether the environment gives this setting as JSON (a list, or a whole section)."""
    return section_model(field) is not None or get_origin(field.annotation) is list


def _environment_json_errors() -> list[str]:
    """Lines for ``CEMM_GATEWAY_*`` variables whose value must be JSON and is not."""
    lines = []
    for key, variable in _environment().items():
        try:
            field = setting_field(key)
        except KeyError:
            continue
        if not _is_complex(field):
            continue
        try:
            json.loads(os.environ[variable])
        except ValueError:
            kind = "a JSON object" if section_model(field) else "a JSON list, with quoted items"
            lines.append(f"  {variable} ({key}): must be {kind}; example: {env_example(key)}")
    return lines


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate.

    Raises :class:`SettingsError` with an actionable message.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    data: dict[str, Any] = {}
    source = "defaults and environment"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            with path.open("rb") as file:
                data = tomllib.load(file)
        except FileNotFoundError:
            raise SettingsError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"configuration file {path} is not valid TOML: {error}") from None
        except OSError as error:
            raise SettingsError(f"cannot read configuration file {path}: {error}") from None
    unknown = _unknown_environment()
    if unknown:
        raise SettingsError("\n".join(["invalid configuration (environment):", *unknown]))
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise SettingsError(_format_error(error, source)) from None
    except PydanticSettingsError as error:
        # The environment source could not decode a value: a list or section that is not JSON.
        lines = _environment_json_errors() or [f"  {error}"]
        raise SettingsError("\n".join(["invalid configuration (environment):", *lines])) from None
    if isinstance(path, Path):
        settings.remember_config_file(path)
    return settings
