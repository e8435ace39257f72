"""start, help and language: the first conversation with Fidelio."""

from __future__ import annotations

from bot.errors import UserFacingError
from bot.handling import HandlerContext, Registry
from bot.locale import format_choices, language_choice, language_name
from bot.replies import Reply, ReplyButton
from bot.settings_section import SUPPORTED_LOCALES


def register(registry: Registry) -> None:
    registry.command("start", summary="help/start")(start)
    registry.command("help", summary="help/help", aliases=("aiuto", "?"))(help_)
    registry.command("language", summary="help/language", aliases=("lingua",))(language)
    registry.button("language")(language_chosen)


async def start(ctx: HandlerContext) -> Reply:
    """A known person sending /start (again) is simply welcomed back."""
    return Reply(
        "welcome", {"name": ctx.person.name, "organisation": ctx.settings.organisation.name}
    )


async def help_(ctx: HandlerContext) -> Reply:
    assert ctx.registry is not None
    return Reply(
        "help",
        {
            "name": ctx.person.name,
            "sections": ctx.registry.help_sections(ctx.person.role),
            "role": ctx.person.role.value,
        },
    )


async def language(ctx: HandlerContext) -> Reply:
    choice = ctx.args.strip().lower()
    if not choice:
        return Reply(
            "language/choose",
            {"current": language_name(ctx.person.locale, ctx.locale)},
            # Each choice in its own language, so a reader lost in the wrong one finds theirs.
            buttons=tuple(
                ReplyButton(language_choice(code), "language", code) for code in SUPPORTED_LOCALES
            ),
        )
    return _set_language(ctx, choice)


async def language_chosen(ctx: HandlerContext) -> Reply:
    return _set_language(ctx, ctx.args)


def _set_language(ctx: HandlerContext, choice: str) -> Reply:
    aliases = {"english": "en", "inglese": "en", "italiano": "it", "italian": "it"}
    code = aliases.get(choice, choice)
    if code not in SUPPORTED_LOCALES:
        raise UserFacingError(
            "errors/unknown_language",
            given=choice,
            choices=format_choices(
                (language_choice(code) for code in SUPPORTED_LOCALES), ctx.locale
            ),
        )
    ctx.person.locale = code
    ctx.person.updated_at = ctx.clock.now()
    # The confirmation is written in the new language, so the name is too.
    return Reply("language/set", {"language": language_name(code, code)})
