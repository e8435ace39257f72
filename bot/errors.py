"""Two tiers of errors: what the person may read, and what only the logs may hold."""

from __future__ import annotations

from typing import Any


class UserFacingError(Exception):
    """An expected failure told to the person through a template in their language.

    ``template_key`` names a template under content/templates/<locale>/errors/; ``context``
    fills it. Never put exception text or internals in the context.
    """

    def __init__(self, template_key: str, **context: Any):
        super().__init__(template_key)
        self.template_key = template_key
        self.context = context


class InputError(Exception):
    """Bad input from a file or the CLI: ``where`` names the place (file:line, key)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
