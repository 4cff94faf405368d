"""The ``schakel`` command line: one module per verb group, assembled in :mod:`.main`."""
