# -*- test-case-name: tests.test_node_cli -*-
"""``rsnode``: the reference node's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dht import cli as cli_dht
from services.cli import chat as cli_chat
from services.cli import files as cli_files
from services.cli import identity as cli_identity
from services.cli import node as cli_node
from services.cli import transfer as cli_transfer
from services.cli.identity import CliError

__all__ = ["main", "build_parser", "COMMAND_REGISTRARS"]


#: The one place other packages' commands plug in: each entry is a ``register(subparsers)``
#: function adding its subcommands (each sets ``func`` to a handler returning an exit status).
COMMAND_REGISTRARS: tuple[Callable[[Any], None], ...] = (
    cli_identity.register,
    cli_node.register,
    cli_files.register,
    cli_transfer.register,
    cli_chat.register,
    cli_dht.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsnode", description="rsproto reference node")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in COMMAND_REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as e:
        print(f"rsnode: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
