"""The ``tokengraft`` command line: one module per command group, :mod:`.app` ties them."""

from tokengraft.cli.app import app, main, run

__all__ = ["app", "main", "run"]
