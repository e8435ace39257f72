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
    """Bad input from a file or the CLI: ``where`` names the place (file:line, key).

    ``reason`` is English, for the command line and the logs. An error that chat can also
    show carries a ``key`` (a template under errors/input/) and the ``params`` that template
    needs, so a person reads it in their own language (see :meth:`for_chat`).
    """

    def __init__(self, where: str, reason: str, key: str = "", **params: Any):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.key = key
        self.params = params

    def for_chat(self) -> UserFacingError:
        """The same refusal for a chat reply: the keyed template, or for a problem without
        one (a content file that does not validate) the general ``errors/input``."""
        if self.key:
            return UserFacingError(f"errors/input/{self.key}", where=self.where, **self.params)
        return UserFacingError("errors/input", where=self.where, reason=self.reason)


class FieldErrors(UserFacingError):
    """A form refused field by field: nothing was saved, and each problem belongs under the
    field it is about.

    ``fields`` maps a form field's id (``bot.replies.FormField.id``) to the error wording its
    problem. Where the platform shows the form (a Slack modal) the dispatcher hands the
    rendered messages to the form, which shows each under its field and stays open; anywhere
    else they are sent as messages, like any UserFacingError (whose template is the first
    field's).
    """

    def __init__(self, fields: dict[str, UserFacingError]):
        if not fields:
            raise ValueError("FieldErrors needs at least one field")
        first = next(iter(fields.values()))
        super().__init__(first.template_key, **first.context)
        self.fields = fields
