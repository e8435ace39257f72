"""The ``fidelio`` command line: :mod:`bot.cli.main` is the root, :mod:`bot.cli.common` what
every command shares; each feature's command group lives in its feature package."""
