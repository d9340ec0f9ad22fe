# -*- test-case-name: tests.test_node_cli -*-
"""``rsnode``: the reference node's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dht import cli as cli_dht
from services.cli import identity as cli_identity
from services.cli import jsonapi as cli_jsonapi
from services.cli import node as cli_node
from services.cli.identity import CliError
from services.registry import cli_registrars

__all__ = ["main", "build_parser", "COMMAND_REGISTRARS"]


#: Every ``register(subparsers)`` function adding subcommands (each sets ``func`` to a
#: handler returning an exit status): the node's own, then each registered service's (its
#: spec's ``cli``), then the DHT's.
COMMAND_REGISTRARS: tuple[Callable[[Any], None], ...] = (
    cli_identity.register,
    cli_node.register,
    *cli_registrars(),
    cli_dht.register,
    cli_jsonapi.register,
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
