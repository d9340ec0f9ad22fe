# -*- test-case-name: tests.test_lab_upnp -*-
"""``python3 -m tools.netlab up|down|status``: a lab that outlives the command, for poking at.

``up`` builds a lab, records it under /run/rsproto-netlab/ and prints how to enter its
namespaces; ``down`` removes one lab (by prefix) or all recorded ones; ``status`` lists them.
"""

from __future__ import annotations

import argparse
import atexit
import subprocess
import sys

from .lab import (
    INTERNET_IP,
    HomeSpec,
    LabError,
    build,
    down_prefix,
    running_labs,
)


def _home(text: str) -> HomeSpec:
    nat, _, extra = text.partition("+")
    if extra not in ("", "upnp"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAT[+upnp]")
    try:
        return HomeSpec(nat, upnp=extra == "upnp")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _up(args: argparse.Namespace) -> int:
    built = build(args.homes, prefix=args.prefix)
    atexit.unregister(built.down)  # it stays up until `down`
    built.record()
    print(f"lab {built.prefix} up; the internet is {built.inet_ns} ({INTERNET_IP})")
    for h in built.homes:
        print(f"  home {h.index}: {h.spec.nat} NAT{' + miniupnpd' if h.spec.upnp else ''}; "
              f"router {h.router_ns} (wan {h.wan_ip}, lan {h.lan_ip}), "
              f"host {h.host_ns} ({h.host_ip})")
    print(f"enter one with: ip netns exec {built.homes[0].host_ns} bash" if built.homes else "")
    print(f"tear down with: python3 -m tools.netlab down {built.prefix}")
    return 0


def _down(args: argparse.Namespace) -> int:
    prefixes = args.prefix or [info["prefix"] for info in running_labs()]
    for prefix in prefixes:
        removed = down_prefix(prefix)
        print(f"lab {prefix}: removed {len(removed)} namespaces")
    return 0


def _status(args: argparse.Namespace) -> int:
    labs = running_labs()
    if not labs:
        print("no lab recorded")
    existing = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                  text=True).stdout.split())
    for info in labs:
        names = [info["inet_ns"]] + [h[k] for h in info["homes"]
                                     for k in ("router_ns", "host_ns")]
        alive = sum(1 for n in names if n in existing)
        print(f"lab {info['prefix']}: {alive}/{len(names)} namespaces present")
        for h in info["homes"]:
            spec = h["spec"]
            print(f"  home {h['index']}: {spec['nat']}{' + upnp' if spec['upnp'] else ''}, "
                  f"wan {h['wan_ip']}, host {h['host_ns']} ({h['host_ip']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.netlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="build a lab and leave it running")
    p.add_argument("homes", nargs="*", type=_home,
                   default=[HomeSpec("cone", True), HomeSpec("cone", True),
                            HomeSpec("symmetric")],
                   help="home networks as NAT[+upnp], NAT one of cone, symmetric "
                        "(default: cone+upnp cone+upnp symmetric)")
    p.add_argument("--prefix", help="namespace name prefix (default: a fresh unique one)")
    p.set_defaults(func=_up)
    p = sub.add_parser("down", help="tear down labs (default: every recorded one)")
    p.add_argument("prefix", nargs="*")
    p.set_defaults(func=_down)
    sub.add_parser("status", help="list recorded labs").set_defaults(func=_status)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as e:
        print(f"netlab: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
