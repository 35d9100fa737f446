"""The ``convlab`` command."""
