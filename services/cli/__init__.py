"""cli: the ``rsnode`` command, one module per group of subcommands."""

from services.cli.rsnode import main

__all__ = ["main"]
