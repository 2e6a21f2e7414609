"""Build a validated settings object from `TUMORSEARCH_…` variables in a mapping the caller passes.

`TUMORSEARCH_LISTENER__PORT=11112` becomes `{"listener": {"port": "11112"}}`; pydantic then validates it.
Variables for sections the program does not have are ignored (one environment serves every program of
`make run`), but a misspelt key inside a section the program has is an error, so a typo fails at start
instead of silently falling back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

PREFIX = "TUMORSEARCH_"
NESTING = "__"

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message names each variable."""


def env_name(path: tuple[str | int, ...]) -> str:
    """The variable that sets the field at `path`, e.g. ("listener", "port") -> TUMORSEARCH_LISTENER__PORT."""
    return PREFIX + NESTING.join(str(part).upper() for part in path)


def settings_from_environ(model: type[M], environ: Mapping[str, str]) -> M:
    """Validate `model` from the `TUMORSEARCH_` variables of `environ`; raise SettingsError naming each bad one."""
    data = _nested_values(model, environ)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SettingsError(_explain(error, environ)) from None


def _nested_values(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(PREFIX):
            continue
        path = key[len(PREFIX):].lower().split(NESTING)
        if path[0] not in model.model_fields:
            continue
        node = data
        for depth, part in enumerate(path[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{key}: {env_name(tuple(path[:depth + 1]))} is a value, not a section")
        if isinstance(node.get(path[-1]), dict):
            raise SettingsError(f"{key}: expected keys below it ({key}__…), found a value for a section")
        node[path[-1]] = value
    return data


def _explain(error: ValidationError, environ: Mapping[str, str]) -> str:
    lines = []
    for problem in error.errors():
        name = env_name(problem["loc"])
        if problem["type"] == "missing":
            lines.append(f"{name}: required but not set")
        elif problem["type"] == "extra_forbidden":
            lines.append(f"{name}: not a known setting (misspelt? see docs/configuration.md)")
        else:
            found = environ.get(name, problem.get("input"))
            lines.append(f"{name}: expected {_expectation(problem['msg'])}; found {found!r}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _expectation(message: str) -> str:
    # pydantic says "Input should be a valid integer, …" or "String should match pattern '…'".
    if message.startswith("Input should be "):
        return message[len("Input should be "):]
    if message.startswith("String should "):
        return "a string that " + message[len("String should "):].replace("match ", "matches ", 1)
    return message[0].lower() + message[1:]
