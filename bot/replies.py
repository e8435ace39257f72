"""What handlers return: data, not messages. The renderer turns it into text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplyButton:
    """``label`` is a key of content/templates/<locale>/labels.yaml, or literal text."""

    label: str
    action: str
    value: str = ""


@dataclass(frozen=True)
class FormField:
    id: str
    label: str
    multiline: bool = True
    max_length: int = 2000
    initial: str = ""
    #: text | select (one of ``options``) | checkbox (any of ``options``)
    kind: str = "text"
    #: (value, label) pairs for select and checkbox fields.
    options: tuple[tuple[str, str], ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class FormSpec:
    """A small form (a Slack modal). Channels without forms show the reply's text instead,
    and the person answers with a message."""

    form: str
    title: str
    submit: str
    fields: tuple[FormField, ...]
    metadata: str = ""


@dataclass(frozen=True)
class Reply:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    buttons: tuple[ReplyButton, ...] = ()
    image: bytes | None = None
    image_name: str = "chart.png"
    form: FormSpec | None = None
