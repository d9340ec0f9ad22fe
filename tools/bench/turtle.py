# -*- test-case-name: tests.test_turtle_bench -*-
"""A file over turtle tunnels of one and two relays, next to the direct download, in one run.

Run ``python3 -m tools.bench.turtle`` (``--size`` in MiB, default 64).  Each scenario starts
one process per node, each a real `Node` (2048-bit keys, real TLS over TCP on 127.0.0.1),
friends along a line:

- ``direct``: fetch - serve (the file from a friend: the multi-source engine as before);
- ``1 relay``: fetch - relay1 - serve (an anonymous download through a tunnel);
- ``2 relays``: fetch - relay1 - relay2 - serve.

``serve`` shares a folder holding the file anonymously; ``fetch`` downloads it (by hash from
the friend, or anonymously) and times the download from the call to ``transfer_complete``
(the tunnel digging is inside that time).  Each relay reports its CPU time while the
download ran and the bytes it relayed, hence its CPU per MiB.  The script prints each rate,
its ratio to the direct one, and the relay figures; every copy's SHA-1 is checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "SCENARIOS"]

MIB = 1 << 20
#: Bound on every wait of the script (seconds).
DEADLINE = 600.0
#: The node line of each scenario, downloader first.
SCENARIOS: dict[str, list[str]] = {
    "direct": ["fetch", "serve"],
    "1 relay": ["fetch", "relay1", "serve"],
    "2 relays": ["fetch", "relay1", "relay2", "serve"],
}


def _make_file(path: Path, size: int) -> str:
    rng = random.Random(20261206)
    h = hashlib.sha1()
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, 16 * MIB))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def _sha1_of(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(16 * MIB):
            h.update(block)
    return h.hexdigest()


def _wait_file(path: Path, proc: subprocess.Popen[bytes] | None = None) -> str:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if path.exists():
            return path.read_text()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"node process exited with {proc.returncode} before {path.name}")
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not appear within {DEADLINE} s")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- the node processes ---------------------------------------------------------------------

async def _node_role(reactor: Any, args: argparse.Namespace) -> None:
    from twisted.internet import task

    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from pqi.items.ids import SERVICE_TURTLE
    from pqi.wire.fields import Sha1Hash
    from services.node.node import FRIENDS_FILE, Node
    from services.sharing import SharingOptions
    from services.transfer.service import TransferCompleted

    work, role = Path(args.work), args.role
    account = Account.create(work / role, role, f"{role}-loc", "bench-password", bits=2048)
    friends = FriendList(work / role / FRIENDS_FILE, now=reactor.seconds)
    node = Node(reactor, account, friends, port=0, owns_friends=True,
                file_sharing=SharingOptions(settle=0, rescan_period=3600))

    async def until(predicate: Any, step: float) -> None:
        end = time.monotonic() + DEADLINE
        while not predicate():
            if time.monotonic() > end:
                raise RuntimeError(f"{role}: waited {DEADLINE} s in vain")
            await task.deferLater(reactor, step, lambda: None)

    await node.startService()
    try:
        if role == "serve":
            await node.sharing.share(str(Path(args.file).parent), anonymous=True)
        _write_atomic(work / f"{role}.cert", account.certificate_text(local_addr=node.listening))
        for other in args.friend:
            node.add_friend(_wait_file(work / f"{other}.cert"))
        peers = lambda: [loc.ssl_id for loc in friends.locations()]  # noqa: E731
        await until(lambda: len(peers()) == len(args.friend) and all(
            SERVICE_TURTLE in node.control.enabled(p) for p in peers()), 0.02)
        _write_atomic(work / f"{role}.ready", "1")
        if role != "fetch":
            await until(lambda: (work / "go").exists(), 0.02)
            cpu0 = _cpu()
            await until(lambda: (work / "stop").exists(), 0.05)
            _write_atomic(work / f"{role}.json", json.dumps({
                "cpu": _cpu() - cpu0,
                "relayed_bytes": node.turtle.router.stats.relayed_bytes}))
            return
        done: list[Any] = []
        node.subscribe(TransferCompleted, lambda e: done.append(e.info))
        file_hash = Sha1Hash.from_hex(args.sha1)
        (work / "go").touch()
        cpu0, started = _cpu(), time.perf_counter()
        if args.direct:
            node.transfers.download(file_hash, args.bytes, "bench.bin", sources=peers())
        else:
            node.turtle.download_anonymous(file_hash, args.bytes, "bench.bin")
        await until(lambda: bool(done), 0.01)
        _write_atomic(work / "result.json", json.dumps({
            "seconds": time.perf_counter() - started, "cpu": _cpu() - cpu0,
            "path": done[0].path}))
    finally:
        await node.stopService()


def _run_role(args: argparse.Namespace) -> int:
    from twisted.internet import defer
    from twisted.internet.epollreactor import EPollReactor

    reactor = EPollReactor()
    outcome: list[Any] = []

    def start() -> None:
        d = defer.ensureDeferred(_node_role(reactor, args))
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    (result,) = outcome
    if result is not None:
        result.printTraceback(file=sys.stderr)
        return 1
    return 0


def _scenario(name: str, base: Path, src: Path, sha1: str, size: int) -> dict[str, Any]:
    line = SCENARIOS[name]
    work = base / name.replace(" ", "-")
    work.mkdir()
    root = Path(__file__).resolve().parents[2]
    procs = []
    try:
        for i, role in enumerate(line):
            friends = [line[j] for j in (i - 1, i + 1) if 0 <= j < len(line)]
            cmd = [sys.executable, "-m", "tools.bench.turtle", "--work", str(work),
                   "--role", role, "--file", str(src), "--sha1", sha1, "--bytes", str(size)]
            for f in friends:
                cmd += ["--friend", f]
            if name == "direct":
                cmd.append("--direct")
            procs.append(subprocess.Popen(cmd, cwd=root))
        result = json.loads(_wait_file(work / "result.json", procs[0]))
        (work / "stop").touch()
        for p in procs:
            if p.wait(timeout=60) != 0:
                raise RuntimeError(f"node process exited with {p.returncode}")
        result["relays"] = {r: json.loads((work / f"{r}.json").read_text())
                            for r in line[1:-1]}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    result["ok"] = _sha1_of(Path(result["path"])) == sha1
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tools.bench.turtle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64, help="file size in MiB (default 64)")
    p.add_argument("--role", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    p.add_argument("--sha1", help=argparse.SUPPRESS)
    p.add_argument("--bytes", type=int, help=argparse.SUPPRESS)
    p.add_argument("--friend", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--direct", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role:
        return _run_role(args)
    size = args.size * MIB
    with tempfile.TemporaryDirectory(prefix="rsproto-turtle-bench-") as tmp:
        base = Path(tmp)
        (base / "share").mkdir()
        src = base / "share" / "bench-source.bin"
        sha1 = _make_file(src, size)
        results = {name: _scenario(name, base, src, sha1, size) for name in SCENARIOS}
    direct = size / results["direct"]["seconds"]
    print(f"{args.size} MiB, each node a process on 127.0.0.1 (real TLS)")
    ok = True
    for name, r in results.items():
        rate = size / r["seconds"]
        ok = ok and r["ok"]
        print(f"{name:>9}: {rate / 1e6:7.2f} MB/s in {r['seconds']:.2f} s "
              f"(x{rate / direct:.2f} of direct), downloader CPU {r['cpu']:.2f} s, "
              f"SHA-1 {'verified' if r['ok'] else 'WRONG'}")
        for relay, info in r["relays"].items():
            mib = info["relayed_bytes"] / MIB
            per = info["cpu"] * 1000 / mib if mib else float("nan")
            print(f"           {relay}: relayed {mib:.1f} MiB, CPU {info['cpu']:.2f} s, "
                  f"{per:.1f} ms CPU per MiB relayed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
