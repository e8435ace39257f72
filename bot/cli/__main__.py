"""``python -m bot.cli``: the same as the ``fidelio`` script."""

from bot.cli.main import main

main()
