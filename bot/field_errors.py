"""Pydantic validation errors in Fidelio's words.

Content files and CSV rows are checked by pydantic models (one per file header or row, with
field validators for the domain rules). :func:`field_problems` turns the resulting
``ValidationError`` into ``(field, reason)`` pairs: the field as the operator wrote it
(``quiz[1].options.en``, with 1-based list positions) and the reason in plain English, with
none of pydantic's own wording ("Value error, ...", ``input_value=``). Callers add the file
name and line, so every problem keeps naming the file, the line and the field.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

#: Plain reasons for pydantic's built-in checks (the domain rules word their own reasons).
_REASONS = {
    "missing": "required",
    "extra_forbidden": "unknown field (check the spelling)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a text",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping of fields",
    "model_type": "must be a mapping of fields",
    "model_attributes_type": "must be a mapping of fields",
}


def field_problems(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """Each problem of ``error`` as (field, reason), in the order pydantic found them.

    ``prefix`` names what was validated when it is part of something larger (``items[3]
    (enps)``); a problem of the whole model is reported under ``prefix`` alone.
    """
    return [(_field(details["loc"], prefix), _reason(details)) for details in error.errors()]


def _field(loc: tuple[int | str, ...], prefix: str) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part + 1}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(file)"


def _reason(details: ErrorDetails) -> str:
    if details["type"] in ("value_error", "assertion_error"):
        # Raised by a domain rule: its own words, without pydantic's "Value error, ".
        return str(details.get("ctx", {}).get("error", details["msg"]))
    return _REASONS.get(details["type"], details["msg"])
