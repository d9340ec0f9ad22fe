# -*- test-case-name: tests.test_jsonapi_server -*-
"""The JSON API on the command line: ``rsnode run``'s ``--jsonapi``/``--no-jsonapi``/
``--jsonapi-remote``/``--webui`` options, and ``rsnode api-token`` (prints the credentials
clients use, created by ``rsnode init``)."""

from __future__ import annotations

import argparse
import pathlib
from typing import TYPE_CHECKING, Any

from services.cli.common import CliError, base_dir_parent
from services.jsonapi.address import DEFAULT_HOST, DEFAULT_PORT, NonLoopbackError, parse_address
from services.jsonapi.credentials import ApiCredentials

if TYPE_CHECKING:
    from services.jsonapi.service import JsonApiService

__all__ = ["register", "add_run_options", "api_service", "create_credentials", "start_api"]


def create_credentials(base_dir: pathlib.Path, user: str) -> ApiCredentials:
    """The account's API credentials, created (0600) if it has none yet."""
    return ApiCredentials.load_or_create(base_dir, user)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``rsnode run``'s JSON API options."""
    parser.add_argument("--jsonapi", default="", metavar="ADDR:PORT",
                        help="serve RetroShare's JSON API there (default: the address saved "
                             "with /rsJsonApi/setBindingAddress and setListeningPort, else "
                             f"{DEFAULT_HOST}:{DEFAULT_PORT})")
    parser.add_argument("--no-jsonapi", dest="jsonapi", action="store_const", const=None,
                        help="do not serve the JSON API")
    parser.add_argument("--jsonapi-remote", action="store_true",
                        help="allow --jsonapi on a non-loopback address (plain HTTP!)")
    parser.add_argument("--webui", type=pathlib.Path, default=None, metavar="DIR",
                        help="serve a web interface (e.g. RetroShare's) from DIR on the "
                             "JSON API's address")


def api_service(reactor: Any, node: Any, args: argparse.Namespace) -> JsonApiService | None:
    """The JSON API service ``rsnode run`` asked for (None with --no-jsonapi)."""
    if args.jsonapi is None:
        return None
    # the server and its settings store only when ``run`` serves the API (rsnode starts fast)
    from services.jsonapi.service import JsonApiService
    from services.jsonapi.settings import SettingsStore
    if args.jsonapi:
        try:
            host, port = parse_address(args.jsonapi)
        except ValueError as e:
            raise CliError(f"--jsonapi: {e}") from e
    else:
        saved = SettingsStore(args.base_dir).load()
        host = saved.listen_host or DEFAULT_HOST
        port = DEFAULT_PORT if saved.listen_port is None else saved.listen_port
    if args.webui is not None and not (args.webui / "index.html").is_file():
        raise CliError(f"--webui: {args.webui} has no index.html")
    credentials = create_credentials(args.base_dir, node.account.name)
    try:
        return JsonApiService(reactor, node, credentials, host=host, port=port,
                              webui=args.webui, allow_remote=args.jsonapi_remote)
    except NonLoopbackError as e:
        raise CliError(str(e)) from e


def start_api(api: JsonApiService) -> None:
    """Start the API; a taken port is logged, and the node runs on without its API."""
    from twisted.internet.error import CannotListenError
    from twisted.logger import Logger
    try:
        api.startService()
    except CannotListenError as e:
        api.running = False
        Logger().error("JSON API not served: cannot listen on {host}:{port} ({error}); "
                   "choose another with --jsonapi ADDR:PORT", host=api.host,
                   port=api.port_number, error=e.socketError)


def _api_token(args: argparse.Namespace) -> int:
    try:
        creds = ApiCredentials.load(args.base_dir)
    except FileNotFoundError:
        raise CliError(f"no API credentials in {args.base_dir} (run `rsnode init`, or "
                       "`rsnode run` once)") from None
    except (ValueError, KeyError) as e:
        raise CliError(f"unreadable API credentials: {e}") from e
    if args.header:
        print(f"Authorization: {creds.basic_header()}")
    else:
        print(creds.token)
    return 0


def register(subparsers: Any) -> None:
    """Add ``api-token``."""
    p = subparsers.add_parser("api-token", parents=[base_dir_parent()],
                              description="Print the user and password (or the HTTP "
                                          "Authorization header) JSON API clients log in with.",
                              help="print the JSON API credentials (user:password)")
    p.add_argument("--header", action="store_true",
                   help="print the HTTP Authorization header instead")
    p.set_defaults(func=_api_token)
