"""List every variable a settings model reads, with type, default and description (for docs and tests)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from shared.config.environ import env_name


@dataclass(frozen=True)
class SettingRow:
    variable: str
    type: str
    default: str
    description: str


def describe_settings(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[SettingRow]:
    """One row per leaf field of `model`, nested sections flattened the way the environment names them."""
    rows: list[SettingRow] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe_settings(annotation, path + (name,)))
            continue
        rows.append(SettingRow(
            variable=env_name(path + (name,)),
            type=_type_name(annotation),
            default=_default_text(field),
            description=(field.description or "").strip(),
        ))
    return rows


def _default_text(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "(required)"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "(unset)" if not value.get_secret_value() else "(secret)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "(empty)"
    return str(value)


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " \\| ".join(names)
    if origin in (list, tuple):
        inner = typing.get_args(annotation)
        return f"list of {_type_name(inner[0])}" if inner else "list"
    if annotation is Path:
        return "path"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def markdown_table(programs: dict[str, type[BaseModel]]) -> str:
    """One row per variable across `programs` ({program name: settings model}), naming who reads it."""
    readers: dict[str, list[str]] = {}
    rows: dict[str, SettingRow] = {}
    for program, model in programs.items():
        for row in describe_settings(model):
            rows.setdefault(row.variable, row)
            readers.setdefault(row.variable, []).append(program)
    lines = ["| Variable | Type | Default | Read by | Meaning |", "|---|---|---|---|---|"]
    for name in sorted(rows, key=lambda n: (n.count("__"), n)):
        row = rows[name]
        lines.append(f"| `{name}` | {row.type} | `{row.default}` | {', '.join(readers[name])} | {row.description} |")
    return "\n".join(lines)
