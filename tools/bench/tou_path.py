# -*- test-case-name: tests.test_lab_tou_path -*-
"""Benchmark: kernel TCP+TLS and TOU+TLS side by side on a real lossy path (two namespaces).

    python3 -m tools.bench.tou_path [--mib 16] [--loss 0,1,5] [--prefix NAME] [--plain]
                                    [--tou-only]   (root)

The path is `tools.netlab.pair`: two network namespaces joined by a veth pair, nftables
dropping a random N% of the packets arriving in each (``numgen random mod 100 < N drop``; this
kernel has no netem, so no delay is added). The veth carries one datagram or TCP segment per
packet, as a wire does (``--offload`` lets 64 KiB GSO/TSO bursts cross whole, and be lost
whole: a default veth's behaviour, which flatters kernel TCP). For each loss rate the same
seeded bytes go from a sender process in one namespace to a receiver process in the other, once
over kernel TCP and once over TOU (a `tcponudp.udpmux.UdpMux` port and
`tcponudp.transport.TouSocket`), both under TLS; the receiver checks their SHA-1 and reports
the time from its connection to the last byte and its CPU seconds. Both namespaces are removed
when the bench ends, whatever happens.  Both TOU ends offer what rsproto ends offer each other
(SACK ranges; larger segments only where the path carries them, not on this veth);
``--plain`` makes them offer nothing, which is the wire a RetroShare peer speaks.
``--tou-only`` skips kernel TCP (quicker A/B runs of TOU changes).

Each TOU line also says where the time went: the receiver's ACKs, its seconds with bytes held
beyond a hole (``hole_s``), the most it held (``ooo_peak_kib``) and the segments it refused as
beyond its window; the sender's recoveries (``recovery_s``, ``longest_ms``), lost
retransmissions sent again (``repeats``), window cuts with the mean and smallest window they
left, the seconds the peer's window or its own held it back (``rwnd_s``, ``cwnd_s``; of
those, ``held_in_recovery_s`` inside a recovery) and its round-trip estimate.

`measure` runs one transfer (the lab test uses it); ``--role`` is the worker's entry point.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time
from typing import Any, Final

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory

from tools.netlab.pair import ADDRESS_B, VethPair, veth_pair

__all__ = ["main", "measure", "Result", "KINDS", "PORT"]

KINDS: Final = ("tcp", "tou")
#: The receiver's port (TCP or UDP) in its namespace.
PORT: Final = 7900
#: A transfer not done after this many seconds is a failure (the slowest, TOU at 5% loss and
#: 64 MiB, takes well under a minute).
TIMEOUT: Final = 300.0
_CHUNK: Final = 1 << 20


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Result(dict[str, Any]):
    """What the receiver reports: ``kind``, ``bytes``, ``seconds``, ``cpu`` (the receiver's),
    ``intact``; and ``sender``: a TOU sender's loss-recovery counters (empty for TCP)."""

    @property
    def goodput(self) -> float:
        """Bytes per second."""
        return self["bytes"] / self["seconds"] if self["seconds"] else 0.0


class _Sink(Protocol):
    def __init__(self, size: int, digest: str, done: defer.Deferred[dict[str, Any]]) -> None:
        self.size, self.digest, self.done = size, digest, done
        self.got = 0
        self.hash = hashlib.sha1()
        self.start = 0.0
        self.cpu = 0.0

    def connectionMade(self) -> None:
        self.start, self.cpu = time.perf_counter(), time.process_time()

    def dataReceived(self, data: bytes) -> None:
        self.got += len(data)
        self.hash.update(data)
        if self.got >= self.size and not self.done.called:
            self.done.callback({"bytes": self.got, "seconds": time.perf_counter() - self.start,
                                "cpu": time.process_time() - self.cpu,
                                "intact": self.hash.hexdigest() == self.digest})
            self.transport.loseConnection()


class _Source(Protocol):
    def __init__(self, data: bytes) -> None:
        self.data = data

    def connectionMade(self) -> None:
        view = memoryview(self.data)
        for i in range(0, len(view), _CHUNK):
            self.transport.write(bytes(view[i:i + _CHUNK]))


async def _worker(reactor: Any, args: argparse.Namespace) -> None:
    from tools.bench.tou import _tls  # the bench's self-signed TLS contexts

    data = _payload(args.size, args.seed)
    server_tls, client_tls = _tls()
    if args.role == "recv":
        done: defer.Deferred[dict[str, Any]] = defer.Deferred()
        digest = hashlib.sha1(data).hexdigest()
        factory = TLSMemoryBIOFactory(server_tls, False, Factory.forProtocol(
            lambda: _Sink(args.size, digest, done)))
        if args.kind == "tcp":
            await TCP4ServerEndpoint(reactor, PORT, interface=args.addr).listen(factory)
        else:
            sock = _tou_socket(reactor, args.addr, PORT, args.plain)
            sock.listen(factory)
        print("ready", flush=True)
        result = await done.addTimeout(TIMEOUT, reactor)
        if args.kind == "tou":
            stream = next(iter(sock.connections.values()))
            result["acks_sent"] = stream.segments_sent
            rx = stream._rx
            result["hole_s"] = round(stream.hole_seconds, 3)
            result["ooo_peak_kib"] = rx.peak_out_of_order >> 10
            result["refused"] = rx.refused
        print(json.dumps(dict(result, kind=args.kind)), flush=True)
        await task.deferLater(reactor, 0.2, lambda: None)  # let our FIN / close leave
        return
    closed: defer.Deferred[None] = defer.Deferred()
    cpu = time.process_time()

    class Source(_Source):
        def connectionLost(self, reason: Any = None) -> None:
            if not closed.called:
                closed.callback(None)

    factory = TLSMemoryBIOFactory(client_tls, True, Factory.forProtocol(lambda: Source(data)))
    if args.kind == "tcp":
        await TCP4ClientEndpoint(reactor, args.addr, PORT).connect(factory)
    else:
        from tcponudp.transport import TouClientEndpoint

        sock = _tou_socket(reactor, "0.0.0.0", 0, args.plain)
        await TouClientEndpoint(sock, args.addr, PORT).connect(factory)
        stream = next(iter(sock.connections.values()))
    await closed.addTimeout(TIMEOUT, reactor)
    if args.kind == "tou":
        r = stream.recovery
        print(json.dumps({"retransmissions": stream.retransmissions, "timeouts": r.timeouts,
                          "fast": r.fast_retransmits, "probes": r.probes,
                          "undone": r.spurious, "isolated": r.isolated,
                          "escalated": r.escalated, "sack": int(stream.sack),
                          "acks": stream.segments_received,
                          "cpu": round(time.process_time() - cpu, 2),
                          "rwnd_s": round(stream.rwnd_limited, 3),
                          "cwnd_s": round(stream.cwnd_limited, 3),
                          "recovery_s": round(r.recovery_seconds, 3),
                          "held_in_recovery_s": round(stream.recovery_limited, 3),
                          "repeats": r.repeats,
                          "longest_ms": round(r.longest_recovery * 1000, 1),
                          "cuts": r.cuts,
                          "cut_kib": round(r.cwnd_after_cuts / max(r.cuts, 1) / 1024, 1),
                          "min_kib": round(r.smallest_cwnd / 1024, 1),
                          "srtt_ms": round((stream.rtt.srtt or 0.0) * 1000, 2),
                          "min_rtt_ms": round((stream.rtt.min_rtt or 0.0) * 1000, 2)}),
              flush=True)


def _tou_socket(reactor: Any, interface: str, port: int, plain: bool) -> Any:
    from tcponudp.transport import TouSocket
    from tcponudp.udpmux import UdpMux, UdpMuxProtocol
    from tcponudp.udpport import listen_udp

    mux = UdpMux()
    listen_udp(reactor, port, UdpMuxProtocol(mux), interface=interface)
    return TouSocket(reactor, mux, **({"large_segments": 0} if plain else {}))


def _worker_main(args: argparse.Namespace) -> int:
    def run(reactor: Any) -> defer.Deferred[None]:
        return defer.ensureDeferred(_worker(reactor, args))

    if not args.profile:
        task.react(run)
        return 0
    import cProfile

    profile = cProfile.Profile()
    try:
        profile.runcall(task.react, run)
    except SystemExit:
        pass
    finally:
        profile.dump_stats(f"{args.profile}-{args.kind}-{args.role}.prof")
    return 0


def measure(pair: VethPair, kind: str, size: int, *, seed: int = 1,
            plain: bool = False, profile: str | None = None) -> Result:
    """Send ``size`` seeded bytes over ``kind`` (``tcp`` or ``tou``, both with TLS) from the
    pair's namespace a to b at its current loss; what the receiver reports (``plain``: the
    TOU ends offer each other nothing, as with RetroShare; ``profile``: each end writes a
    cProfile of its run to ``PROFILE-KIND-ROLE.prof``).  Raises
    `RuntimeError` if the receiver does not report within `TIMEOUT`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    common = ["-m", "tools.bench.tou_path", "--kind", kind, "--size", str(size),
              "--seed", str(seed), "--addr", ADDRESS_B, *(["--plain"] if plain else []),
              *(["--profile", profile] if profile else [])]
    receiver = pair.python(pair.ns_b, *common, "--role", "recv", stdout=subprocess.PIPE,
                           text=True)
    sender = None
    try:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {kind} receiver did not start")
        sender = pair.python(pair.ns_a, *common, "--role", "send", stdout=subprocess.PIPE,
                             text=True)
        try:
            out, _ = receiver.communicate(timeout=TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{kind} transfer of {size} bytes at {pair.loss}% loss "
                               f"did not finish in {TIMEOUT} s") from None
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if receiver.returncode != 0 or not lines:
            raise RuntimeError(f"the {kind} receiver failed ({receiver.returncode}): {out}")
        result = Result(json.loads(lines[-1]))
        try:
            sent, _ = sender.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            sent = ""
        stats = [line for line in sent.splitlines() if line.startswith("{")]
        result["sender"] = json.loads(stats[-1]) if stats else {}
        return result
    finally:
        for process in (sender, receiver):
            if process is not None:
                if process.poll() is None:
                    process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                pair.processes.remove(process)


def _counters(stats: dict[str, int]) -> str:
    return " ".join(f"{k} {v}" for k, v in stats.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TCP+TLS and TOU+TLS on a lossy veth path")
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--loss", default="0,1,5", help="percentages, comma-separated")
    parser.add_argument("--prefix", help="namespace name prefix (default: unique per run)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--offload", action="store_true",
                        help="let GSO/TSO bursts cross the veth whole (lost whole)")
    parser.add_argument("--plain", action="store_true",
                        help="TOU ends offer each other nothing (no SACK): RetroShare's wire")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="each end writes a cProfile to PREFIX-KIND-ROLE.prof (per loss: "
                             "PREFIX is suffixed with the loss rate)")
    parser.add_argument("--tou-only", action="store_true",
                        help="skip kernel TCP+TLS (TOU experiments; the ratio to TCP is not shown)")
    parser.add_argument("--role", choices=("send", "recv"), help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--addr", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return _worker_main(args)
    size = args.mib << 20
    print(f"{'loss':>5}  {'TCP+TLS':>12}  {'cpu':>7}  {'TOU+TLS':>12}  {'cpu':>7}  "
          f"{'TOU/TCP':>8}  {'TOU vs 0%':>9}  TOU sender", flush=True)
    tou_zero = 0.0
    with veth_pair(args.prefix, offload=args.offload) as pair:
        for percent in (int(x) for x in args.loss.split(",")):
            pair.set_loss(percent)
            tcp = (Result(kind="tcp", bytes=0, seconds=0.0, cpu=0.0, intact=True)
                   if args.tou_only else measure(pair, "tcp", size, seed=args.seed))
            tou = measure(pair, "tou", size, seed=args.seed, plain=args.plain,
                          profile=f"{args.profile}{percent}" if args.profile else None)
            if not (tcp["intact"] and tou["intact"]):
                print(f"{percent}%: bytes differ (tcp {tcp['intact']}, tou {tou['intact']})")
                return 1
            if percent == 0:
                tou_zero = tou.goodput
            own = f"{tou.goodput / tou_zero:9.0%}" if tou_zero else f"{'':>9}"
            print(f"{percent:4d}%  {tcp.goodput / 1e6:7.1f} MB/s  {tcp['cpu']:5.2f} s  "
                  f"{tou.goodput / 1e6:7.1f} MB/s  {tou['cpu']:5.2f} s  "
                  f"{tou.goodput / tcp.goodput if tcp.goodput else 0.0:8.1%}  {own}  "
                  f"acks_sent {tou.get('acks_sent')} "
                  f"hole_s {tou.get('hole_s')} ooo_peak_kib {tou.get('ooo_peak_kib')} "
                  f"refused {tou.get('refused')} "
                  f"{_counters(tou['sender'])}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
