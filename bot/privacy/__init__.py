"""Personal data: what Fidelio holds about a person, exporting it, erasing it, retention.

Each feature that stores personal data contributes a :class:`~bot.privacy.parts.PersonalDataPart`
(an exporter and an eraser) to the registry built by
:func:`~bot.privacy.parts.build_privacy_registry`, and may add a retention rule in
:mod:`bot.privacy.retention`; ``fidelio people export`` and ``fidelio people forget`` then
cover it without further changes.
"""
