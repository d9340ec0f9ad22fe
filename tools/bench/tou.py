# -*- test-case-name: tests.test_tou_transport -*-
"""Benchmark: TOU+TLS against kernel TCP+TLS on loopback, and TOU goodput under loss.

    python3 -m tools.bench.tou [--mib 8] [--loss 0,0.01,0.05] [--sim [--sack [--wide]]]

TOU runs on `tcponudp.udpport.BatchUdpPort`s (bursts read in one call where Linux coalesces
them). Each run sends the same random bytes through TLS (self-signed EC certificate) and checks
them byte for byte; lossy runs go through `tools.netlab.lossyrelay` (seeded, with 10%
reordering). ``--mib 100 --loss 0.05`` is the 100 MiB acceptance run.

``--sim`` runs two sans-IO `TouStream`s against each other on the simulated network
(`tools.simnet`) instead (no TLS, no sockets): a link of ``--rate`` bytes per second each way
plus the relay's delay and reordering.  It is deterministic for a given seed and shows what the loss
recovery does (retransmissions, timeouts, spurious retransmissions) in seconds of simulated
time, which makes algorithm changes quick to compare.  ``--sack`` lets both streams offer
SACK ranges (as two rsproto nodes' streams do; without it they behave as with RetroShare).
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.ssl import CertificateOptions
from twisted.protocols.tls import TLSMemoryBIOFactory

from tcponudp.stream import DataReceived, TouConfig, TouStream
from tcponudp.transport import TouClientEndpoint, TouServerEndpoint, TouSocket
from tcponudp.udpmux import UdpMux, UdpMuxProtocol
from tcponudp.udpport import listen_udp
from tools.netlab.lossyrelay import Impairment, LossyRelay
from tools.simnet import LinkModel, SimNet, SimNode

__all__ = ["main", "simulate", "SimResult"]

#: The relay's impairment besides loss: 1 ms each way, 10% of datagrams held back 10 ms.
REORDER = 0.1
DELAY = 0.001
#: Bytes the simulated sender keeps queued in its stream (as the transport's high-water mark).
_SEND_QUEUE = 256 * 1024
_A, _B = ("192.0.2.1", 1), ("192.0.2.2", 1)  # never contacted (RFC 5737)


def _tls() -> tuple[CertificateOptions, CertificateOptions]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return (CertificateOptions(privateKey=crypto.PKey.from_cryptography_key(key),
                               certificate=crypto.X509.from_cryptography(cert)),
            CertificateOptions())


class _Sink(Protocol):
    def __init__(self, expected: bytes, done: defer.Deferred[float]) -> None:
        self.expected, self.done, self.got = expected, done, bytearray()

    def dataReceived(self, data: bytes) -> None:
        self.got += data
        if len(self.got) >= len(self.expected) and not self.done.called:
            if bytes(self.got) != self.expected:
                self.done.errback(AssertionError("bytes differ"))
            else:
                self.done.callback(time.perf_counter())


class _Source(Protocol):
    def __init__(self, data: bytes) -> None:
        self.data = data

    def connectionMade(self) -> None:
        self.transport.write(self.data)


def _run(kind: str, data: bytes, loss: float, batch: bool = True
         ) -> tuple[float, float, str]:
    """Seconds from connect to the last byte received, the process CPU seconds spent meanwhile
    (both ends run in this process; on a shared machine CPU time is the steadier measure), and
    the TOU sender's recovery counters."""
    reactor = SelectReactor()
    server_tls, client_tls = _tls()
    out: list[Any] = []

    async def body() -> tuple[float, float, str]:
        done: defer.Deferred[float] = defer.Deferred()
        server = TLSMemoryBIOFactory(server_tls, False,
                                     Factory.forProtocol(lambda: _Sink(data, done)))
        client = TLSMemoryBIOFactory(client_tls, True,
                                     Factory.forProtocol(lambda: _Source(data)))
        ports: list[Any] = []
        socks: list[TouSocket] = []
        try:
            start = time.perf_counter()
            cpu = time.process_time()
            if kind == "tcp":
                port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(server)
                ports.append(port)
                start, cpu = time.perf_counter(), time.process_time()
                await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(client)
            else:
                muxes = [UdpMux(), UdpMux()]
                ports += [listen_udp(reactor, 0, UdpMuxProtocol(m), interface="127.0.0.1")
                          if batch else
                          reactor.listenUDP(0, UdpMuxProtocol(m), interface="127.0.0.1")
                          for m in muxes]
                socks += [TouSocket(reactor, m) for m in muxes]
                target = ("127.0.0.1", ports[1].getHost().port)
                if loss:
                    relay = LossyRelay(reactor, ("127.0.0.1", ports[0].getHost().port), target,
                                       Impairment(loss=loss, reorder=REORDER, delay=DELAY), 1)
                    ports.append(reactor.listenUDP(0, relay, interface="127.0.0.1"))
                    target = ("127.0.0.1", ports[-1].getHost().port)
                await TouServerEndpoint(socks[1]).listen(server)
                start, cpu = time.perf_counter(), time.process_time()
                await TouClientEndpoint(socks[0], *target).connect(client)
            end = await done
            cpu = time.process_time() - cpu
            detail = ""
            for stream in (socks[0].connections.values() if socks else ()):
                r = stream.recovery
                detail = (f"retx {stream.retransmissions} (fast {r.fast_retransmits}, probes "
                          f"{r.probes}, timeouts {r.timeouts}, undone {r.spurious})  "
                          f"srtt {(stream.srtt or 0) * 1e3:.1f} ms")
            return end - start, cpu, detail
        finally:
            from twisted.internet.task import deferLater
            await deferLater(reactor, 0, lambda: None)  # let the last callbacks unwind
            for sock in socks:
                sock.close()
            for port in ports:
                await port.stopListening()

    def start() -> None:
        d = defer.ensureDeferred(body())
        d.addBoth(out.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    result = out[0]
    if not isinstance(result, tuple):
        result.raiseException()
    return result


@dataclass(frozen=True, slots=True)
class SimResult:
    """One simulated transfer: simulated seconds and the sender's loss-recovery counters."""

    seconds: float
    retransmissions: int
    timeouts: int
    fast_retransmits: int
    probes: int
    spurious: int
    datagrams: int
    size: int

    @property
    def goodput(self) -> float:
        """Bytes per simulated second."""
        return self.size / self.seconds if self.seconds else 0.0


def simulate(size: int, loss: float, *, seed: int = 1, rate: float = 40e6,
             reorder: float = REORDER, delay: float = DELAY, duplicate: float = 0.0,
             limit: float = 3600.0, sack: bool = False, wide: bool = False) -> SimResult:
    """Send ``size`` bytes from one `TouStream` to another over `tools.simnet` (``rate``
    bytes/s each way, the relay's delay, loss, duplication and reordering) on a fake clock;
    check them byte for byte.  Raises `RuntimeError` if the transfer is not done after
    ``limit`` simulated seconds.  ``sack``: both streams offer SACK ranges; ``wide``: with
    them, window scaling and the wider scale with room beyond a hole (what two rsproto nodes
    offer each other on a direct path)."""
    net = SimNet(seed, default=LinkModel(delay=delay, loss=loss, duplicate=duplicate,
                                         rate=rate, reorder=reorder))
    config = TouConfig(sack=sack, scale_window=sack and wide, hole_window=sack and wide)
    a, b = TouStream(config=config, isn=1), TouStream(config=config, isn=2 ** 32 - 5000)
    payload = random.Random(seed).randbytes(size)
    got = bytearray()

    def take(_: SimNode, output: object) -> None:
        if isinstance(output, DataReceived):
            got.extend(output.data)

    node_a = net.add(_A, a, receive=lambda data, _src, now: a.datagram_received(data, now),
                     on_output=lambda _n, _o: None, peer=_B)
    net.add(_B, b, receive=lambda data, _src, now: b.datagram_received(data, now),
            on_output=take, peer=_A)
    net.feed(_B, b.listen)
    net.feed(_A, a.connect)
    queued = 0

    def done() -> bool:
        nonlocal queued
        if a.connected and queued < size and a.buffered < _SEND_QUEUE:
            a.send(payload[queued:queued + _SEND_QUEUE])
            queued = min(size, queued + _SEND_QUEUE)
            node_a.driver.service()
        return len(got) >= size

    net.run(limit, until=done)
    if len(got) < size:
        raise RuntimeError(f"simulation ran past {limit} s with {len(got)} bytes received")
    if bytes(got) != payload:
        raise AssertionError("bytes differ")
    st = a.recovery
    return SimResult(net.clock.seconds(), a.retransmissions, st.timeouts, st.fast_retransmits,
                     st.probes, st.spurious, net.sent, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TOU benchmark")
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--loss", default="0,0.01,0.05")
    parser.add_argument("--sim", action="store_true",
                        help="sans-IO simulation on a fake clock instead of sockets and TLS")
    parser.add_argument("--rate", type=float, default=40e6, help="--sim link rate, bytes/s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sack", action="store_true",
                        help="--sim streams offer SACK ranges (two rsproto nodes)")
    parser.add_argument("--wide", action="store_true",
                        help="with --sack, also window scaling and room beyond a hole "
                             "(two rsproto nodes on a direct path)")
    args = parser.parse_args(argv)
    if args.sim:
        for loss in (float(x) for x in args.loss.split(",")):
            r = simulate(args.mib << 20, loss, seed=args.seed, rate=args.rate, sack=args.sack,
                         wide=args.wide)
            print(f"sim loss {loss:4.0%}  {args.mib} MiB  {r.goodput / 1e6:8.1f} MB/s  "
                  f"{r.seconds:8.3f} s  retx {r.retransmissions} (fast {r.fast_retransmits}, "
                  f"probes {r.probes}, timeouts {r.timeouts}, undone {r.spurious})")
        return 0
    data = os.urandom(args.mib << 20)
    tcp, tcp_cpu, _ = _run("tcp", data, 0.0)
    print(f"TCP+TLS loopback      {args.mib} MiB  {len(data) / tcp / 1e6:8.1f} MB/s"
          f"  cpu {tcp_cpu:.2f} s", flush=True)
    for loss in (float(x) for x in args.loss.split(",")):
        t, cpu, detail = _run("tou", data, loss)
        print(f"TOU+TLS loss {loss:4.0%}     {args.mib} MiB  {len(data) / t / 1e6:8.1f} MB/s"
              f"  ({tcp / t:.2%} of TCP)  {t:.1f} s  cpu {cpu:.2f} s ({tcp_cpu / cpu:.2%} of"
              f" TCP's)  {detail}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
