"""``python -m services.cli`` is the ``schakel`` command (used to start worker processes)."""

from services.cli.main import main

main()
