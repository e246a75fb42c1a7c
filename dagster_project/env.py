"""Settings from environment variables: a field names its variable once (``env_field``), and
``from_env`` builds a resource from whichever are set, naming the variable in every error."""

from __future__ import annotations

import os
import typing
from typing import Any, TypeVar

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

R = TypeVar("R", bound=ConfigurableResource)


class SettingError(ValueError):
    """A configuration value that cannot work; the message names the variable."""


def env_field(env: str, *default: object, description: str = "", **rules: Any) -> Any:
    """A field fed by the environment variable ``env`` (read by ``from_env``); the variable's
    name leads its description, which the Dagster UI shows. No default: required."""
    text = f"{env}: {description}" if description else env
    return Field(*default, description=text, json_schema_extra={"env": env}, **rules)


def from_env(resource: type[R]) -> R:
    """``resource`` with every ``env_field`` whose variable is set taken from the environment.

    Text and integers are passed as ``EnvVar`` (the UI shows the variable, not the value; a
    required one that is unset fails the run at its start, naming it); numbers and switches are
    parsed here, with an error naming the variable. A variable set to an empty string counts as
    unset, except for an optional setting with a default, where it means "none".
    """
    values: dict[str, object] = {}
    for name, field in resource.model_fields.items():
        extra = field.json_schema_extra
        env = extra.get("env") if isinstance(extra, dict) else None
        if env is None:
            continue
        raw = os.environ.get(env)
        if raw is None or not raw.strip():
            if field.is_required():
                values[name] = EnvVar(env)
            elif raw is not None and field.default is not None and _optional(field.annotation):
                values[name] = None
            continue
        values[name] = _parse_setting(env, raw, _setting_kind(field.annotation))
    return resource(**values)


def _optional(annotation: object) -> bool:
    return type(None) in typing.get_args(annotation)


def _setting_kind(annotation: object) -> type:
    kinds = [a for a in typing.get_args(annotation) or (annotation,) if a is not type(None)]
    return kinds[0]


def _parse_setting(env: str, raw: str, kind: type) -> object:
    if kind is str:
        return EnvVar(env)
    if kind is int:
        return EnvVar.int(env)
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingError(f"{env}={raw!r} is not a number") from None
    if kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise SettingError(f"{env}={raw!r} must be true or false")
    raise TypeError(f"{env}: no reader for settings of type {kind}")
