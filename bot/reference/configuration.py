"""docs/configuration.md, written from the settings models: every key with its type, default,
environment variable, the value the shipped config.yaml gives it, and its description.

The prose around the tables (how the file is found, ``${VAR}`` references, overrides, paths,
validation) is kept here, beside the code that implements it; the per-key text is each field's
``description`` and the section intros are the section classes' docstrings.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard, get_args, get_origin

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from bot.config import Settings, env_references
from bot.reference.field_types import comparable, readable_type, shown_value
from bot.reference.markdown import GENERATED_NOTE, cell, table

HEADER = """\
# Configuration reference

{note}

Fidelio reads one YAML file: `--config`/`-c` (before the command, e.g.
`fidelio -c /etc/fidelio.yaml run`), else the file named by `FIDELIO_CONFIG`, else
`./config.yaml`. The shipped `config.yaml` runs as it is: SQLite, the console channel, the demo
organisation, no secrets. `fidelio config check` validates the file and prints a summary with
secrets hidden.

**Secrets come from the environment.** Any string value in the file may refer to environment
variables:

- `${{VAR}}`: required. If `VAR` is unset or empty, loading fails naming the key
  (`telegram.token: environment variable TELEGRAM_BOT_TOKEN is not set`).
- `${{VAR:-default}}`: optional. `default` is used when `VAR` is unset or empty; it may be empty
  (`${{VAR:-}}`), and a value that consists only of such a reference and comes out empty counts
  as not set.
- References can sit inside longer strings:
  `url: postgresql+asyncpg://fidelio:${{PGPASSWORD}}@db.internal:5432/fidelio`.

Environment variables the shipped `config.yaml` refers to: {shipped_vars}.

**Any key can be overridden** by the environment variable in the *Environment variable*
column, `{prefix}<SECTION>{delimiter}<KEY>` (two underscores between section and key), which
wins over the file: `FIDELIO_DATABASE__URL`, `FIDELIO_TELEGRAM__MODE=webhook`,
`FIDELIO_CONSOLE__ENABLED=false`, `FIDELIO_LOGGING__LEVEL=DEBUG`; the top-level `content_dir`
is `FIDELIO_CONTENT_DIR`. A key whose value is a mapping or a list takes JSON, as shown in its
*Default*. Do not confuse the two spellings: `FIDELIO_DATABASE_URL` (one underscore) is a
variable the shipped file refers to, `FIDELIO_DATABASE__URL` (two) overrides whatever the file
says.

**Paths.** Relative paths in the file (`content_dir`, the file of a SQLite URL) are resolved
against the folder of the configuration file, so the working directory does not matter; the
folder of a SQLite file is created when needed. Paths given through a
`{prefix}<SECTION>{delimiter}<KEY>` override are not rewritten and are relative to the working
directory.

**Validation.** Settings are typed and checked once at start-up; unknown keys are refused. Each
problem is printed as `key: reason` and the command exits with status 2. Besides each key's
type, these rules hold:

- At least one of `console`, `telegram`, `slack` must be enabled.
- `content_dir` must contain a `templates/` folder.
- The rules of a section are given under its name below (what an enabled channel needs, the
  secret key, anonymity, the objective index).

In the tables, *Default* is the value Fidelio uses when the key is absent (`empty`: not set;
a secret's value is never shown, only `hidden`); *config.yaml* shows what the shipped file sets
where that differs from the default or comes from the environment.

Sections: {contents}.
"""


@dataclass(frozen=True)
class KeyDoc:
    """One key of the reference, every cell of its row already in words."""

    key: str
    type: str
    default: str
    env: str
    shipped: str
    description: str


@dataclass
class SectionDoc:
    """One section (or a top-level key): its intro, its keys, and the mappings its values are
    made of (an objective indicator, a suggestion category), each with its own fields."""

    name: str
    intro: str
    keys: list[KeyDoc] = field(default_factory=list)
    parts: dict[str, list[KeyDoc]] = field(default_factory=dict)


def configuration_reference(shipped: Mapping[str, Any]) -> str:
    """docs/configuration.md: ``shipped`` is the raw (unsubstituted) shipped config.yaml."""
    sections = settings_sections(shipped)
    prefix, delimiter = _env_spelling()
    header = HEADER.format(
        note=GENERATED_NOTE.format(
            source="the settings models (`bot/**/settings.py`, "
            "`bot/core_settings.py`, `bot/config.py`)"
        ),
        shipped_vars=", ".join(f"`{name}`" for name in _shipped_variables(shipped)),
        prefix=prefix,
        delimiter=delimiter,
        contents=", ".join(f"[{s.name}](#{s.name})" for s in sections),
    )
    parts = [header]
    for section in sections:
        parts.append(_render_section(section))
    return "\n".join(parts)


def _render_section(section: SectionDoc) -> str:
    lines = [f"## {section.name}", ""]
    if section.intro:
        lines += [section.intro, ""]
    lines += table(
        ("Key", "Type", "Default", "Environment variable", "config.yaml", "Description"),
        [
            (f"`{k.key}`", k.type, k.default, f"`{k.env}`", k.shipped, k.description)
            for k in section.keys
        ],
    )
    for owner, fields in section.parts.items():
        lines += ["", f"Each {owner} is a mapping of:", ""]
        lines += [f"- `{f.key}`: {f.type}{_default_note(f)}. {f.description}" for f in fields]
    lines.append("")
    return "\n".join(lines)


def _default_note(key: KeyDoc) -> str:
    return f"; default {key.default}" if key.default != "required" else "; required"


def settings_sections(shipped: Mapping[str, Any]) -> list[SectionDoc]:
    """Every section of :class:`Settings` in declaration order, each key documented."""
    prefix, delimiter = _env_spelling()
    sections: list[SectionDoc] = []
    for name, info in Settings.model_fields.items():
        model = info.annotation
        if _is_model(model):
            section = SectionDoc(name, _docstring(model))
            for key, key_info in model.model_fields.items():
                env = f"{prefix}{name}{delimiter}{key}".upper()
                raw = shipped.get(name, {}) if isinstance(shipped.get(name), Mapping) else {}
                section.keys.append(_key_doc(f"{name}.{key}", key_info, env, raw, key))
                _add_parts(section, f"{name}.{key}", key_info)
        else:
            section = SectionDoc(name, "")
            section.keys.append(_key_doc(name, info, f"{prefix}{name}".upper(), shipped, name))
        sections.append(section)
    return sections


def _add_parts(section: SectionDoc, key: str, info: FieldInfo) -> None:
    """The fields of a mapping-valued key (or of a list of mappings), listed once under its
    section: every objective indicator is the same kind of mapping."""
    annotation = info.annotation
    if _is_model(annotation):
        model, owner = annotation, f"`{section.name}.*` value"
    elif get_origin(annotation) is tuple and _is_model(item := get_args(annotation)[0]):
        model, owner = item, f"entry of `{key}`"
    else:
        return
    if owner not in section.parts:
        section.parts[owner] = [
            _key_doc(name, sub, "", {}, name) for name, sub in model.model_fields.items()
        ]


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _key_doc(
    key: str, info: FieldInfo, env: str, raw_section: Mapping[str, Any], name: str
) -> KeyDoc:
    if not info.description:
        raise ValueError(f"{key} has no description: add Field(description=...)")
    secret = SecretStr in (info.annotation, *get_args(info.annotation))
    default = "required" if info.is_required() else _default(info, secret)
    return KeyDoc(
        key=key,
        type=cell(readable_type(info)),
        default=cell(default),
        env=env,
        shipped=cell(_shipped(info, raw_section, name, secret)),
        description=cell(info.description),
    )


def _default(info: FieldInfo, secret: bool) -> str:
    return shown_value(info.get_default(call_default_factory=True), secret=secret)


def _shipped(info: FieldInfo, raw_section: Mapping[str, Any], name: str, secret: bool) -> str:
    """What the shipped file says, when it is an ``${ENV}`` reference or differs from the
    default; blank when the file leaves the key out or repeats the default."""
    if name not in raw_section:
        return ""
    raw = raw_section[name]
    if any(env_references(text) for text in _strings(raw)):
        # A secret written beside a reference is still a secret.
        whole = isinstance(raw, str) and raw.startswith("${") and raw.endswith("}")
        if secret and not whole:
            return shown_value(raw, secret=True)
        return f"`{raw}`" if isinstance(raw, str) else shown_value(raw)
    annotation: Any = info.annotation
    try:
        value = TypeAdapter(annotation).validate_python(raw)
    except ValidationError:
        return shown_value(raw, secret=secret)
    default = info.get_default(call_default_factory=True)
    if comparable(value) == comparable(default):
        return ""
    return shown_value(value, secret=secret)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _shipped_variables(shipped: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for text in _strings(shipped):
        names += [n for n in env_references(text) if n not in names]
    return names


def _docstring(model: type[BaseModel]) -> str:
    """A section's docstring as one paragraph."""
    return " ".join(inspect.cleandoc(model.__doc__ or "").split())


def _env_spelling() -> tuple[str, str]:
    config = Settings.model_config
    return str(config.get("env_prefix", "")), str(config.get("env_nested_delimiter", ""))
