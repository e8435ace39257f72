"""Settings types and values as a reader of the configuration reference wants them: ``int
(1–2160)``, ``float > 0``, ``"polling" | "webhook"``, ``secret string or empty``.

Everything is read from the pydantic model (annotations and the ``annotated_types``
constraints pydantic keeps in ``FieldInfo.metadata``), so the reference cannot drift from
what validation accepts.
"""

from __future__ import annotations

import json
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

#: How a default or a configured value is shown when it is not set.
EMPTY = "empty"
#: How a secret value is shown: never the value itself.
HIDDEN = "hidden"


def readable_type(field: FieldInfo) -> str:
    """The type of a settings field in words, with its bounds and whether it may be empty."""
    annotation = field.annotation
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    text = _describe(annotation, field.metadata)
    return f"{text} or empty" if optional else text


def _describe(annotation: Any, metadata: Sequence[Any]) -> str:
    if get_origin(annotation) is Literal:
        return " | ".join(json.dumps(choice) for choice in get_args(annotation))
    if annotation is bool:
        return "boolean"
    if annotation in (int, float):
        return _bounded(annotation.__name__, metadata)
    if annotation is SecretStr:
        return "secret string"
    if annotation is Path:
        return "path"
    if annotation is str:
        pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
        return f"string matching `{pattern}`" if pattern else "string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping of " + ", ".join(f"`{name}`" for name in annotation.model_fields)
    if get_origin(annotation) is tuple:
        item = _describe(get_args(annotation)[0], ())
        item = item.replace("mapping of", "mappings of", 1)
        least = next((m.min_length for m in metadata if getattr(m, "min_length", None)), 0)
        return f"list of {item}" + (f" (at least {least})" if least else "")
    raise TypeError(f"no readable form for {annotation!r}: teach bot/reference/field_types.py")


def _bounded(name: str, metadata: Sequence[Any]) -> str:
    """``int (1–2160)`` for two inclusive bounds, else ``float > 0``, ``float ≥ 0 and < 1``."""
    found: dict[str, Any] = {}
    for item in metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if getattr(item, kind, None) is not None:
                found[kind] = getattr(item, kind)
    if set(found) == {"ge", "le"}:
        return f"{name} ({found['ge']}–{found['le']})"
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    bounds = [f"{signs[kind]} {value}" for kind, value in found.items()]
    return f"{name} {' and '.join(bounds)}" if bounds else name


def comparable(value: Any) -> Any:
    """``value`` as plain data (secrets revealed, models as dicts), to tell whether two
    values of a field are the same."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, tuple | list):
        return [comparable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def shown_value(value: Any, secret: bool = False) -> str:
    """A value as the reference shows it: ``empty``, `` `true` ``, `` `Europe/Rome` ``,
    JSON for mappings and lists (what their environment variable takes); never a secret."""
    if value is None or value == "":
        return EMPTY
    if secret or isinstance(value, SecretStr):
        return EMPTY if not comparable(value) else HIDDEN
    if isinstance(value, bool):
        return f"`{json.dumps(value)}`"
    if isinstance(value, BaseModel | tuple | list | dict):
        data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        if isinstance(data, tuple | list):
            data = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in data]
        return f"`{json.dumps(data, ensure_ascii=False)}`"
    return f"`{value}`"
