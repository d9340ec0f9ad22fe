# -*- test-case-name: tests.test_banlist_nodes -*-
"""``rsnode block ...``: ban addresses, deny friends, ban files and identities, list them.

``rsnode block ip 1.2.3.0/24``, ``block friend <name|ssl id|pgp id> [--profile]``,
``block file <sha1>``, ``block id <gxs id>``, each with ``--undo`` to lift it, and
``rsnode block list``.  Every subcommand asks the running node over the control channel.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from services.cli.common import CliError, base_dir_parent, describe_subcommands
from services.cli.terminal import safe
from services.node.control_client import ControlClientError, NodeNotRunningError, call

__all__ = ["register", "format_listing"]


def _ask(args: argparse.Namespace, command: str, params: dict[str, Any]) -> Any:
    try:
        return call(args.base_dir, command, params, timeout=60.0)
    except NodeNotRunningError as e:
        raise CliError(f"{e}; start it with `rsnode run`") from e
    except ControlClientError as e:
        raise CliError(str(e)) from e
    except OSError as e:
        raise CliError(f"the node did not answer: {e}") from e


def _print(args: argparse.Namespace, result: Any, text: str) -> int:
    print(json.dumps(result, indent=1) if args.json else text)
    return 0


def _ip(args: argparse.Namespace) -> int:
    params = {"range": args.range, "white": args.white}
    if args.undo:
        done = _ask(args, "unblock_ip", params)
        return _print(args, done, f"{args.range}: {'lifted' if done else 'was not listed'}")
    ban = _ask(args, "block_ip", {**params, "comment": args.comment or ""})
    return _print(args, ban, f"{'whitelisted' if args.white else 'banned'} {ban['range']}")


def _friend(args: argparse.Namespace) -> int:
    if args.undo:
        done = _ask(args, "unblock_friend", {"friend": args.friend})
        return _print(args, done, f"{args.friend}: {'allowed' if done else 'was not denied'}")
    d = _ask(args, "block_friend", {"friend": args.friend, "reason": args.reason or "",
                                    "profile": args.profile})
    return _print(args, d, f"denied {d['kind']} {d['id']}")


def _file(args: argparse.Namespace) -> int:
    if args.undo:
        done = _ask(args, "unblock_file", {"hash": args.hash})
        return _print(args, done, f"{args.hash}: {'lifted' if done else 'was not banned'}")
    f = _ask(args, "block_file", {"hash": args.hash, "name": args.name or "",
                                  "size": args.size})
    return _print(args, f, f"banned file {f['hash']}")


def _id(args: argparse.Namespace) -> int:
    if args.undo:
        done = _ask(args, "unblock_id", {"id": args.id})
        return _print(args, done, f"{args.id}: {'lifted' if done else 'was not banned'}")
    _ask(args, "block_id", {"id": args.id, "reason": args.reason or ""})
    return _print(args, True, f"banned identity {args.id}")


def format_listing(listing: dict[str, Any]) -> str:
    """``rsnode block list`` as text, one section per kind."""
    lines = ["addresses:"]
    lines += [f"  {b['range']}  {b['reason']}  {b['comment']}" for b in listing["ips"]]
    lines += ["whitelist:"] + [f"  {b['range']}  {b['comment']}" for b in listing["whitelist"]]
    lines += ["friends:"] + [f"  {d['kind']} {d['id']}  {d['reason']}"
                             for d in listing["friends"]]
    lines += ["files:"] + [f"  {f['hash']}  {safe(f['name'])}" for f in listing["files"]]
    lines += ["identities:"] + [f"  {i['id']}  {i['reason']}" for i in listing["ids"]]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    listing = _ask(args, "block_list", {})
    return _print(args, listing, format_listing(listing))


def register(subparsers: Any) -> None:
    """Add ``block ip|friend|file|id|list``."""
    group = subparsers.add_parser(
        "block", help="block addresses, friends, files, identities",
        description="Block communication: ban addresses and ranges, deny friends, ban files "
                    "and identities; --undo lifts a block.")
    sub = group.add_subparsers(dest="block_command", required=True)
    common = argparse.ArgumentParser(add_help=False, parents=[base_dir_parent()])
    common.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    common.add_argument("--undo", action="store_true", help="lift the block")
    p = sub.add_parser("ip", parents=[common], help="ban an address or a /24, /16 range")
    p.add_argument("range", help="1.2.3.4, 1.2.3.0/24 or 1.2.0.0/16")
    p.add_argument("--comment", help="why (kept locally, never sent)")
    p.add_argument("--white", action="store_true", help="whitelist instead of ban")
    p.set_defaults(func=_ip)
    p = sub.add_parser("friend", parents=[common], help="remove and deny a friend")
    p.add_argument("friend", help="name, SSL id (a location) or PGP id (a profile)")
    p.add_argument("--profile", action="store_true", help="deny the whole profile")
    p.add_argument("--reason", help="why (logged when it is refused)")
    p.set_defaults(func=_friend)
    p = sub.add_parser("file", parents=[common], help="ban a file by its SHA-1")
    p.add_argument("hash", help="40 hex digits")
    p.add_argument("--name", help="its name (for the list)")
    p.add_argument("--size", type=int, default=0, help="its size (for the list)")
    p.set_defaults(func=_file)
    p = sub.add_parser("id", parents=[common], help="ban a GXS identity")
    p.add_argument("id", help="the identity id (hex)")
    p.add_argument("--reason", help="why")
    p.set_defaults(func=_id)
    p = sub.add_parser("list", parents=[common], help="everything blocked")
    p.set_defaults(func=_list)
    describe_subcommands(sub)
