# -*- test-case-name: tests.test_cli_errors -*-
"""What every ``rsnode`` command shares: the account directory, the password, the exit codes.

The account directory comes from ``--base-dir`` (before or after the subcommand), else the
``RSNODE_BASE_DIR`` variable, else the platform's user data directory.  The password comes from
``RSNODE_PASSWORD`` or a prompt.  Every failure a user can meet is one line on stderr and one
of the exit codes below (``docs/cli.md`` lists them); no tracebacks.
"""

from __future__ import annotations

import argparse
import getpass
import os
import pathlib
from typing import Any, Final

import platformdirs

from services.cli.password import take_password

__all__ = [
    "describe_subcommands",
    "CliError", "NodeNotRunningCliError", "PASSWORD_ENV", "BASE_DIR_ENV", "default_base_dir",
    "base_dir_parent", "password", "ask_node", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE",
    "EXIT_NOT_RUNNING", "EXIT_LOCKED", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE",
]

#: Environment variable that supplies the account password to scripts.
PASSWORD_ENV: Final = "RSNODE_PASSWORD"
#: Environment variable naming the account directory (``--base-dir`` wins).
BASE_DIR_ENV: Final = "RSNODE_BASE_DIR"

#: Success.
EXIT_OK: Final = 0
#: The system refused: a file or database cannot be written (read-only disk, a path under a
#: file, a full disk), or the node failed to start.
EXIT_FAILURE: Final = 1
#: A usage error or a problem the user fixes with other input: bad arguments, no account,
#: wrong password, a mangled certificate, an unknown friend.
EXIT_USAGE: Final = 2
#: The command needs the running node (``rsnode run``) and none answers.
EXIT_NOT_RUNNING: Final = 3
#: ``rsnode run``: another node already runs on this account directory.
EXIT_LOCKED: Final = 4
#: Ctrl-C, or Ctrl-D at a prompt (128 + SIGINT, as shells report).
EXIT_INTERRUPTED: Final = 130
#: The reader of our output went away (``rsnode status | head -1``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE: Final = 141


class CliError(Exception):
    """A failure the user can fix; ``main`` prints it as one line and exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class NodeNotRunningCliError(CliError):
    """The command needs ``rsnode run`` for this account directory."""

    def __init__(self, base_dir: pathlib.Path) -> None:
        super().__init__(f"no node is running on {base_dir}; start it with `rsnode run`",
                         EXIT_NOT_RUNNING)


def default_base_dir() -> pathlib.Path:
    """Where the account lives unless ``--base-dir`` says otherwise."""
    env = os.environ.get(BASE_DIR_ENV)
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path(platformdirs.user_data_dir("rsproto"))


def _directory(text: str) -> pathlib.Path:
    return pathlib.Path(text).expanduser()


def base_dir_parent(*, top_level: bool = False) -> argparse.ArgumentParser:
    """A parent parser adding ``--base-dir``.  The top-level one sets the default; the
    subcommands' copies only override it when given, so both places work."""
    parent = argparse.ArgumentParser(add_help=False)
    if top_level:
        parent.add_argument("--base-dir", type=_directory, default=default_base_dir(),
                            metavar="DIR",
                            help=f"the account directory (default: ${BASE_DIR_ENV}, else "
                                 f"{platformdirs.user_data_dir('rsproto')})")
    else:
        parent.add_argument("--base-dir", type=_directory, default=argparse.SUPPRESS,
                            metavar="DIR", help="the account directory (as before the "
                                                "subcommand)")
    return parent


def password(confirm: bool = False, take: bool = False) -> str:
    """The account password: ``RSNODE_PASSWORD``, else asked on the terminal (Ctrl-C or
    Ctrl-D there end the command with `EXIT_INTERRUPTED`).  ``take`` (``rsnode run``) also
    removes the variable from the process, so the running node no longer holds it
    (`services.cli.password`)."""
    env = take_password(PASSWORD_ENV) if take else os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    first = getpass.getpass("Account password: ")
    if confirm and getpass.getpass("Repeat the password: ") != first:
        raise CliError("the two passwords differ")
    return first


def ask_node(base_dir: pathlib.Path, command: str, args: dict[str, Any] | None = None,
             timeout: float = 10.0) -> Any:
    """Run a control command on the node of ``base_dir``; `NodeNotRunningCliError` when
    none runs, a `CliError` carrying the node's one-line answer when it refuses."""
    from services.node.control_client import ControlClientError, NodeNotRunningError, call
    try:
        return call(base_dir, command, args, timeout=timeout)
    except NodeNotRunningError:
        raise NodeNotRunningCliError(base_dir) from None
    except ControlClientError as e:
        raise CliError(str(e)) from e
    except OSError as e:
        raise CliError(f"the node did not answer: {e.strerror or e}", EXIT_FAILURE) from e


def describe_subcommands(action: Any) -> None:
    """Give every subcommand of an ``add_subparsers`` action that has none a description:
    its help sentence, so ``rsnode X --help`` says what X does."""
    for choice in action._choices_actions:  # noqa: SLF001
        parser = action.choices[choice.dest]
        if not parser.description:
            parser.description = choice.help

