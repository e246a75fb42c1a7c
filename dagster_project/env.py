"""Settings from environment variables: a field names its variable once (``env_field``), and
``from_env`` builds a resource from whichever are set. A value that cannot be read never stops
the code location from loading: it is kept as a message naming the variable, and the run that
uses the resource fails at its start with it."""

from __future__ import annotations

import os
import typing
from typing import Annotated, Any, TypeVar

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, ValidationError
from pydantic_core import PydanticUndefined

R = TypeVar("R", bound=ConfigurableResource)

# Bounds a setting's type carries, so a field reads as one row: name, type, variable, default.
Share = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class SettingError(ValueError):
    """A configuration value that cannot work; the message names the variable."""


def env_field(
    env: str, default: Any = PydanticUndefined, description: str = "", **rules: Any
) -> Any:
    """A field fed by the environment variable ``env`` (read by ``from_env``); the variable's
    name leads its description, which the Dagster UI shows. No default: required."""
    text = f"{env}: {description}" if description else env
    return Field(default, description=text, json_schema_extra={"env": env}, **rules)


class EnvResource(ConfigurableResource):
    """A resource fed by environment variables: it refuses to start while any was unreadable."""

    unreadable_settings: list[str] = Field(
        default_factory=list,
        description="environment values that could not be read; a run fails at its start with them",
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.unreadable_settings:
            raise SettingError("; ".join(self.unreadable_settings))
        self.check_settings()

    def check_settings(self) -> None:
        """Refuse settings that cannot work together, naming the variable."""


def _env_of(resource: type[ConfigurableResource], name: str) -> str | None:
    extra = resource.model_fields[name].json_schema_extra
    return extra.get("env") if isinstance(extra, dict) else None


def from_env(resource: type[R]) -> R:
    """``resource`` with every ``env_field`` whose variable is set taken from the environment.

    Text and integers are passed as ``EnvVar`` (the UI shows the variable, not the value; a
    required one that is unset fails the run at its start, naming it); numbers and switches are
    parsed here. A value that cannot be read, or breaks the field's bounds, is left out and
    named in ``unreadable_settings``. A variable set to an empty string counts as unset, except
    for an optional setting with a default, where it means "none".
    """
    values: dict[str, object] = {}
    unreadable: dict[str, str] = {}
    for name, field in resource.model_fields.items():
        env = _env_of(resource, name)
        if env is None:
            continue
        raw = os.environ.get(env)
        if raw is None or not raw.strip():
            if field.is_required():
                values[name] = EnvVar(env)
            elif raw is not None and field.default is not None and _optional(field.annotation):
                values[name] = None
            continue
        try:
            values[name] = _parse_setting(env, raw, _setting_kind(field.annotation))
        except SettingError as exc:
            unreadable[name] = str(exc)
    while True:
        try:
            built = resource(**values)
            break
        except ValidationError as exc:
            broken = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if not broken & set(values):
                raise
            for name in broken & set(values):
                raw = os.environ.get(_env_of(resource, name) or "", "")
                message = next(e["msg"] for e in exc.errors() if e["loc"][:1] == (name,))
                unreadable[name] = f"{_env_of(resource, name)}={raw!r}: {message.lower()}"
                del values[name]
    if unreadable and "unreadable_settings" in resource.model_fields:
        return resource(**values, unreadable_settings=list(unreadable.values()))
    return built


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
