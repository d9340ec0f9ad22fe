"""cli: the ``rsnode`` command, one module per group of subcommands."""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {"services.cli.rsnode": ("main",)})
