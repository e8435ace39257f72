"""References generated from the code: docs/configuration.md from the settings models,
docs/command-line.md from the ``fidelio`` command tree, docs/chat-commands.md from the handler
registry. ``make docs`` writes them and a test fails when a committed one is out of date."""
