"""Personal data: what Fidelio holds about a person, exporting it, erasing it, retention.

Each feature that stores personal data contributes :class:`~bot.privacy.parts.PersonalDataPart`
objects (an exporter and an eraser) and retention rules through its ``Feature``;
``fidelio people export``, ``fidelio people forget`` and the daily retention job cover every
feature in :data:`bot.features.FEATURES` without further changes.
"""
