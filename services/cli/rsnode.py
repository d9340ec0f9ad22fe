# -*- test-case-name: tests.test_cli_errors -*-
"""``rsnode``: the reference node's command line.

`main` turns every failure a user can meet into one line on stderr and a documented exit code
(`services.cli.common`): a `CliError`, Ctrl-C or Ctrl-D, a closed pipe, a file or database the
system refuses to write.  Programming errors still show their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, Final

from dht import cli as cli_dht
from services.cli import identity as cli_identity
from services.cli import jsonapi as cli_jsonapi
from services.cli import node as cli_node
from services.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    CliError,
    base_dir_parent,
)

__all__ = ["main", "build_parser", "COMMAND_REGISTRARS", "SERVICE_COMMANDS", "version"]

#: The registered services' subcommands: the ``cli`` of each spec in
#: `services.registry.NODE_SERVICES`, in order (``cli_registrars()`` as paths).  Stated here
#: so that ``rsnode`` imports its command-line modules only, never the services themselves:
#: a short command such as ``rsnode status`` then starts in a fraction of a second
#: (tests/test_registry.py checks that this list and the specs agree).
SERVICE_COMMANDS: Final[tuple[str, ...]] = (
    "services.cli.social:register",
    "services.cli.chat:register_chat",
    "services.cli.chat:register_mail",
    "services.cli.transfer:register",
    "services.cli.files:register",
    "services.cli.publish:register",
    "services.cli.distant:register",
    "services.cli.block:register",
)


def _registrar(path: str) -> Callable[[Any], None]:
    module, _, function = path.partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


#: Every ``register(subparsers)`` function adding subcommands (each sets ``func`` to a
#: handler returning an exit status): the node's own, then each registered service's
#: (`SERVICE_COMMANDS`), then the DHT's and the JSON API's.
COMMAND_REGISTRARS: tuple[Callable[[Any], None], ...] = (
    cli_identity.register,
    cli_node.register,
    *(_registrar(path) for path in SERVICE_COMMANDS),
    cli_dht.register,
    cli_jsonapi.register,
)


def version() -> str:
    """rsproto's version: the installed distribution's, else the source tree's setup.cfg."""
    try:
        return metadata.version("rsproto")
    except metadata.PackageNotFoundError:
        import configparser
        import pathlib
        cfg = configparser.ConfigParser()
        cfg.read(pathlib.Path(__file__).resolve().parents[2] / "setup.cfg")
        return cfg.get("metadata", "version", fallback="unknown")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsnode", parents=[base_dir_parent(top_level=True)],
        description="rsproto's RetroShare-compatible node: an account, friends, chat, mail "
                    "and files, friend to friend (docs/cli.md)")
    parser.add_argument("--version", action="version", version=f"rsnode {version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMAND_REGISTRARS:
        register(sub)
    return parser


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is
    quiet too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _fail(message: str, code: int) -> int:
    print(f"rsnode: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except CliError as e:
        return _fail(str(e), e.code)
    except KeyboardInterrupt:
        print("\nrsnode: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EOFError:
        print("\nrsnode: interrupted (end of input at the prompt)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except sqlite3.Error as e:
        base = getattr(args, "base_dir", None)
        if base is not None and base.is_dir() and not os.access(base, os.W_OK):
            return _fail(f"cannot write to {base}: read-only ({e})", EXIT_FAILURE)
        return _fail(f"the account's database cannot be used: {e}", EXIT_FAILURE)
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        return _fail(f"cannot use{where}: {e.strerror or e}", EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
