# -*- test-case-name: tests.test_cli -*-
"""``rsnode``: the reference node's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from pqi import demo
    return demo.main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsnode", description="rsproto reference node")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="show rsproto at work on this machine (loopback only)")
    p.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
