# -*- test-case-name: tests.test_transfer_bench -*-
"""One file between two node processes on 127.0.0.1, next to scp of the same file.

Run ``python3 -m tools.bench.transfer`` (``--size`` in MiB, default 1024).  The script writes
a file of seeded pseudo-random bytes, then starts two processes, each a real `Node` with an
account of its own (2048-bit keys), talking real TLS over TCP on loopback: one serves the file
(`FileTransferService.share_file`), the other befriends it and downloads the file by hash.
The downloader's time runs from the ``download`` call to the ``transfer_complete`` event, so
it includes the whole-file SHA-1 check and the move into the incoming folder; the time until
the last byte was written is printed too.  The script then checks the SHA-1 of the copy.

For comparison it starts ``sshd -D -e -f <config>`` on a free loopback port with a host key
and an authorized client key made for the run in the temporary folder, copies the same file
with ``scp`` to it, checks that copy's SHA-1, and prints both rates and their ratio.  Without
sshd or scp installed it says so and prints only ours.

``--profile DIR`` runs both node processes under cProfile and writes ``serve.prof`` and
``fetch.prof`` to DIR (then prints the top functions of each).  ``--no-sync`` is a diagnostic:
the downloading process skips ``fsync``/``fdatasync`` (as scp does; the partial's durability
is then gone), to show what the per-chunk syncs cost on this disk.
"""

from __future__ import annotations

import argparse
import cProfile
import getpass
import hashlib
import json
import os
import pstats
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

MIB = 1 << 20
#: Bound on every wait of the script (seconds).
DEADLINE = 600.0


def _sha1_of(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(16 * MIB):
            h.update(block)
    return h.hexdigest()


def _make_file(path: Path, size: int) -> str:
    rng = random.Random(20261125)
    h = hashlib.sha1()
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, 16 * MIB))
            h.update(block)
            f.write(block)
            left -= len(block)
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
    """Publish ``text`` whole: the other process polls for this file."""
    from pqi.storage import atomic_write  # imported late, as the rest of rsproto here

    atomic_write(path, text.encode(), 0o644)


# --- the node processes ---------------------------------------------------------------------

async def _node_role(reactor: Any, role: str, work: Path, args: argparse.Namespace) -> None:
    from twisted.internet import task

    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from pqi.items.ids import SERVICE_FILE_TRANSFER
    from pqi.wire.fields import Sha1Hash
    from services.node.heap import freeze_startup_heap
    from services.node.node import FRIENDS_FILE, Node
    from services.transfer.engine import Phase
    from services.transfer.service import TransferCompleted

    other = "fetch" if role == "serve" else "serve"
    if args.no_sync and role == "fetch":
        os.fsync = os.fdatasync = lambda fd: None
    account = Account.create(work / role, role, f"{role}-loc", "bench-password", bits=2048)
    friends = FriendList(work / role / FRIENDS_FILE, now=reactor.seconds)
    node = Node(reactor, account, friends, port=0, owns_friends=True)
    await node.startService()
    freeze_startup_heap()  # as `rsnode run` does once its node is up
    try:
        if role == "serve":
            item = node.transfers.share_file(args.file)
            if item.hash.to_hex() != args.sha1:
                raise RuntimeError("the served file's SHA-1 is not the generated one")
        _write_atomic(work / f"{role}.cert",
                      account.certificate_text(local_addr=node.listening))
        node.add_friend(_wait_file(work / f"{other}.cert"))

        async def until(predicate: Any, step: float) -> None:
            end = time.monotonic() + DEADLINE
            while not predicate():
                if time.monotonic() > end:
                    raise RuntimeError(f"{role}: waited {DEADLINE} s in vain")
                await task.deferLater(reactor, step, lambda: None)

        if role == "serve":
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            await until(lambda: (work / "stop").exists(), 0.1)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            server = node.transfers.server
            _write_atomic(work / "serve.json", json.dumps({
                "cpu": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
                "requests": server.requests_queued, "refused": dict(server.refused)}))
            return
        peer = friends.locations()[0].ssl_id
        await until(lambda: SERVICE_FILE_TRANSFER in node.control.enabled(peer), 0.02)
        done: list[Any] = []
        node.subscribe(TransferCompleted, lambda e: done.append(e.info))
        file_hash = Sha1Hash.from_hex(args.sha1)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        node.transfers.download(file_hash, args.size, "bench.bin", sources=[peer])
        data_done: list[float] = []

        def watch() -> bool:
            t = node.transfers.downloads.get(file_hash)
            if not data_done and (t is None or t.engine.phase is not Phase.DOWNLOADING):
                data_done.append(time.perf_counter())
            return bool(done)

        await until(watch, 0.01)
        finished = time.perf_counter()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        _write_atomic(work / "result.json", json.dumps({
            "seconds": finished - started, "data_seconds": data_done[0] - started,
            "path": done[0].path, "write_waits": node.transfers.write_waits,
            "write_wait_seconds": node.transfers.write_wait_seconds,
            "cpu": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)}))
    finally:
        await node.stopService()


def _run_role(role: str, args: argparse.Namespace) -> int:
    from twisted.internet import defer
    from twisted.internet.epollreactor import EPollReactor

    from services.node.heap import keep_freed_memory

    keep_freed_memory()  # as `rsnode run` does
    reactor = EPollReactor()
    outcome: list[Any] = []

    def start() -> None:
        d = defer.ensureDeferred(_node_role(reactor, role, Path(args.work), args))
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    reactor.run(installSignalHandlers=False)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.path.join(args.profile, f"{role}.prof"))
    (result,) = outcome
    if not (result is None or isinstance(result, dict)):
        result.printTraceback(file=sys.stderr)
        return 1
    return 0


def _ours(work: Path, src: Path, sha1: str, size: int, profile: str | None,
          no_sync: bool) -> dict[str, Any]:
    common = [sys.executable, "-m", "tools.bench.transfer", "--work", str(work),
              "--file", str(src), "--sha1", sha1, "--bytes", str(size)]
    if profile:
        common += ["--profile", profile]
    if no_sync:
        common.append("--no-sync")
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen(common + ["--role", role], cwd=root) for role in
             ("serve", "fetch")]
    try:
        result = json.loads(_wait_file(work / "result.json", procs[1]))
        (work / "stop").touch()
        for p in procs:
            if p.wait(timeout=60) != 0:
                raise RuntimeError(f"node process exited with {p.returncode}")
        result["serve"] = json.loads((work / "serve.json").read_text())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    result["ok"] = _sha1_of(Path(result["path"])) == sha1
    return result


# --- scp over loopback ----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scp(work: Path, src: Path, sha1: str) -> dict[str, Any] | str:
    """Seconds of ``scp`` of ``src`` to an sshd of our own on loopback, or why not."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd")
                                    else None)
    scp, keygen = shutil.which("scp"), shutil.which("ssh-keygen")
    if sshd is None or scp is None or keygen is None:
        return "sshd/scp not installed (Debian: openssh-server, openssh-client)"
    ssh = work / "ssh"
    ssh.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / name)],
                       check=True)
    shutil.copy(ssh / "client_key.pub", ssh / "authorized_keys")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    port = _free_port()
    config = ssh / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {ssh / 'host_key'}\n"
        f"AuthorizedKeysFile {ssh / 'authorized_keys'}\nPidFile {ssh / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n")
    before = _children_cpu()
    daemon = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)],
                              stderr=open(ssh / "sshd.log", "wb"))
    result: dict[str, Any] | str
    try:
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > end:
                    return f"sshd did not start: {(ssh / 'sshd.log').read_text()[-300:]}"
                time.sleep(0.05)
        dest = work / "scp-copy.bin"
        cmd = [scp, "-q", "-P", str(port), "-i", str(ssh / "client_key"),
               "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
               "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}",
               str(src), f"{getpass.getuser()}@127.0.0.1:{dest}"]
        started = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, timeout=DEADLINE)
        seconds = time.perf_counter() - started
        if run.returncode != 0:
            return f"scp failed: {run.stderr.decode(errors='replace')[-300:]}"
        result = {"seconds": seconds, "ok": _sha1_of(dest) == sha1}
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    # Both ends: scp and its ssh, sshd and the session's scp (waited for by the daemon).
    result["cpu"] = _children_cpu() - before
    return result


def _children_cpu() -> float:
    """CPU seconds of every child process waited for so far (and of their children)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _print_profile(path: str, role: str) -> None:
    print(f"\n--- {role}: top functions by own time ---")
    pstats.Stats(path).sort_stats("tottime").print_stats(18)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="MiB to move (default 1024)")
    ap.add_argument("--profile", metavar="DIR", help="cProfile both node processes")
    ap.add_argument("--no-scp", action="store_true", help="measure ours only")
    ap.add_argument("--no-sync", action="store_true",
                    help="diagnostic: the downloader skips fsync/fdatasync (as scp does)")
    # Used by the script when it starts the node processes.
    ap.add_argument("--role", choices=("serve", "fetch"), help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--sha1", help=argparse.SUPPRESS)
    ap.add_argument("--bytes", type=int, dest="size_bytes", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role is not None:
        args.size = args.size_bytes
        return _run_role(args.role, args)
    size = args.size * MIB
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
        args.profile = os.path.abspath(args.profile)
    with tempfile.TemporaryDirectory(prefix="rsproto-bench-transfer-") as tmp:
        work = Path(tmp)
        src = work / "source.bin"
        t0 = time.perf_counter()
        sha1 = _make_file(src, size)
        print(f"file: {size / MIB:.0f} MiB of pseudo-random bytes, SHA-1 {sha1} "
              f"(written in {time.perf_counter() - t0:.1f} s)")
        ours = _ours(work, src, sha1, size, args.profile, args.no_sync)
        rate = size / ours["seconds"] / 1e6
        print(f"rsproto ft: {rate:.1f} MB/s ({ours['seconds']:.2f} s from the download call "
              f"to transfer_complete, whole-file SHA-1 check included; last byte written at "
              f"{ours['data_seconds']:.2f} s = {size / ours['data_seconds'] / 1e6:.1f} MB/s; "
              f"downloader CPU {ours['cpu']:.2f} s); SHA-1 "
              f"{'verified' if ours['ok'] else 'WRONG'}")
        print(f"  the downloader's reactor waited for its sync thread {ours['write_waits']} "
              f"times ({ours['write_wait_seconds']:.2f} s)")
        serve = ours["serve"]
        print(f"  sender CPU {serve['cpu']:.2f} s; {serve['requests']} data requests served "
              f"(mean {size / max(1, serve['requests']) / 1024:.0f} KiB); refused: "
              f"{serve['refused'] or 'none'}")
        os.unlink(ours["path"])
        if args.no_scp:
            scp: dict[str, Any] | str = "not asked for (--no-scp)"
        else:
            scp = _scp(work, src, sha1)
        if isinstance(scp, str):
            print(f"scp: {scp}")
        else:
            scp_rate = size / scp["seconds"] / 1e6
            print(f"scp over loopback: {scp_rate:.1f} MB/s ({scp['seconds']:.2f} s; CPU of "
                  f"both ends {scp['cpu']:.2f} s); SHA-1 {'verified' if scp['ok'] else 'WRONG'}")
            print(f"ratio rsproto/scp: {rate / scp_rate:.2f}")
        if args.profile:
            for role in ("serve", "fetch"):
                _print_profile(os.path.join(args.profile, f"{role}.prof"), role)
        ok = ours["ok"] and (isinstance(scp, str) or scp["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
