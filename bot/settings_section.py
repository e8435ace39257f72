"""The base of every settings section, in config.py and in the feature packages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SUPPORTED_LOCALES = ("en", "it")


class Section(BaseModel):
    """One section of config.yaml: frozen once loaded; an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
