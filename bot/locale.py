"""Locale-aware formatting of what people read: dates and times, numbers, percentages,
durations, language names and plural forms, all from Babel (CLDR data).

Every function takes Fidelio's locale code (``"en"``, ``"it"``, see ``SUPPORTED_LOCALES``);
:func:`babel_locale` maps it to the CLDR locale whose conventions Fidelio follows. Nothing here
reads configuration: the caller passes the reader's locale and time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_time,
    format_timedelta,
    get_datetime_format,
    get_timezone_gmt,
)
from babel.lists import format_list
from babel.numbers import format_decimal, format_percent

#: Fidelio's English is British (``organisation``) and its times day-first on a 24-hour
#: clock, so "en" reads as en_GB; plain CLDR "en" is US English ("Mar 15, 2027, 9:00 AM").
_CLDR_NAMES = {"en": "en_GB", "it": "it_IT"}
#: The mark of a missing figure (a dash, not "0": nothing was measured).
MISSING = "–"
#: Signed figures (eNPS, changes) use the typographic minus, as their "+" does: CLDR's minus
#: for en and it is the ASCII hyphen, which reads as a dash in ranges like "−21 … +25".
_SIGNED = "+#,##0;−#,##0"


@lru_cache(maxsize=16)
def babel_locale(locale: str | None) -> Locale:
    """The Babel ``Locale`` for a Fidelio locale code; an unknown code reads as English."""
    try:
        return Locale.parse(_CLDR_NAMES.get(locale or "en", locale or "en"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(_CLDR_NAMES["en"])


def format_day(day: date, locale: str) -> str:
    """A calendar day, month abbreviated: ``15 Mar 2027`` (en), ``15 mar 2027`` (it)."""
    return format_date(day, "medium", locale=babel_locale(locale))


def zone_abbreviation(local: datetime, locale: str) -> str:
    """The abbreviation people in that zone use (``CET``, ``CEST``, ``BST``, ``UTC``).

    CLDR names most zones only in full or as an offset (Italian has no "CET"), so the IANA
    abbreviation is used; where the IANA database has none but an offset (``+03``), Babel's
    localized GMT format (``GMT+03:00``) says the same thing unambiguously.
    """
    name = local.tzname() or ""
    if not name or name[0] in "+-":
        return get_timezone_gmt(local, "long", locale=babel_locale(locale))
    return name


def format_local_time(when: datetime, timezone: str | None, locale: str) -> str:
    """A time in a reader's time zone and language, the zone named by its usual abbreviation
    so nobody has to guess whose 09:00 it is: ``15 Mar 2027, 09:00 CET``."""
    loc = babel_locale(locale)
    local = when.astimezone(ZoneInfo(timezone or "UTC"))
    # The locale's own way of joining a date and a time ("{1}, {0}" in en and it).
    joined = str(get_datetime_format("medium", locale=loc)).format(
        format_time(local, "short", tzinfo=local.tzinfo, locale=loc),
        format_date(local.date(), "medium", locale=loc),
    )
    return f"{joined} {zone_abbreviation(local, locale)}"


def format_number(
    value: float | None, locale: str, *, decimals: int = 0, signed: bool = False
) -> str:
    """A figure rounded to ``decimals`` places with the locale's separators (``0.81`` in
    English, ``0,81`` in Italian); ``signed`` writes ``+12``, ``−7`` and a bare ``0``;
    :data:`MISSING` for None."""
    if value is None:
        return MISSING
    loc = babel_locale(locale)
    places = "." + "0" * decimals if decimals else ""
    if signed:
        # Rounded first, so -0.4 reads "0" rather than "−0", and zero carries no sign.
        rounded = round(value, decimals)
        if rounded == 0:
            return format_decimal(0, "#,##0" + places, locale=loc)
        positive, negative = _SIGNED.split(";")
        return format_decimal(rounded, f"{positive}{places};{negative}{places}", locale=loc)
    return format_decimal(value, "#,##0" + places, locale=loc)


def format_pct(value: float | None, locale: str) -> str:
    """A percentage given on 0–100, whole: ``60%``; :data:`MISSING` for None."""
    if value is None:
        return MISSING
    return format_percent(value / 100.0, locale=babel_locale(locale))


def format_duration(value: timedelta | float, locale: str) -> str:
    """A length of time in words, in its largest sensible unit: ``5 hours``, ``5 ore``,
    ``90 minutes``, ``3 days``. ``value`` is a timedelta or a number of seconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    # A unit is used from two of it up: 90 minutes and 30 hours stay as they are instead of
    # rounding to "2 hours" and "1 day" (Babel's default switches at 0.85 of the next unit).
    return format_timedelta(
        timedelta(seconds=seconds), threshold=2, format="long", locale=babel_locale(locale)
    )


def plural(count: float, locale: str, one: str, other: str, many: str | None = None) -> str:
    """The form of a word for ``count`` by the locale's CLDR plural rule: ``one`` or
    ``other`` (Italian also has ``many`` for round millions; it defaults to ``other``)."""
    form = babel_locale(locale).plural_form(count)
    if form == "one":
        return one
    if form == "many" and many is not None:
        return many
    return other


def counted(count: int, locale: str, one: str, other: str) -> str:
    """A count and the noun in the right form: ``1 person``, ``1,234 people``,
    ``1.234 persone``."""
    return f"{format_number(count, locale)} {plural(count, locale, one, other)}"


def language_name(code: str, locale: str | None = None) -> str:
    """A language's name in the reader's language (``italiano``, ``English``, ``inglese``):
    as it is written inside a sentence. Without ``locale``, in the language itself."""
    language = babel_locale(code).language
    reader = babel_locale(locale or code)
    return reader.languages.get(language, code)


def language_choice(code: str) -> str:
    """A language named in itself, as a menu shows it: ``English``, ``Italiano``.

    The first letter is raised because a choice stands alone (CLDR's "uiListOrMenu" context),
    while in a sentence Italian writes ``italiano``.
    """
    name = language_name(code)
    return name[:1].upper() + name[1:]


def format_choices(names: Iterable[str], locale: str) -> str:
    """Alternatives joined as the locale writes a list: ``English and Italiano``,
    ``English e Italiano``."""
    return format_list(list(names), style="standard", locale=babel_locale(locale))
