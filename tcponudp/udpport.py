# -*- test-case-name: tests.test_udpmux -*-
"""A Twisted UDP port that reads a burst of datagrams in one system call (Linux ``UDP_GRO``).

Twisted's `twisted.internet.udp.Port` reads one datagram per ``recvfrom``.  With the socket
option ``UDP_GRO`` on, Linux hands a socket that asked for it a run of equal-sized datagrams of
one flow in one buffer (up to 64 KiB: on loopback, or from a NIC that coalesces), with their
size in a control message; `BatchUdpPort` cuts the buffer back into exactly the datagrams the
peer sent and hands them to the protocol's ``datagramsReceived(datagrams, addr)`` in one call
(or one by one to ``datagramReceived`` when the protocol has no batch method).  What arrives is
the same datagrams in the same order, whoever sent them (RetroShare included): only the number
of system calls and of Python calls per datagram changes.

Where the option is refused (not Linux, an old kernel), the port reads as Twisted's does.
Either way it asks for a larger socket receive buffer (`SOCKET_RECEIVE_BUFFER`), so that a
burst of a peer with a scaled TOU window is not dropped at the socket.
`listen_udp` is ``reactor.listenUDP`` with this port.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from typing import Any, Final

from twisted.internet import udp
from twisted.internet.protocol import AbstractDatagramProtocol
from twisted.logger import Logger

__all__ = ["BatchUdpPort", "listen_udp", "GRO_BUFFER", "SOCKET_RECEIVE_BUFFER"]

_SOL_UDP: Final = 17
_UDP_GRO: Final = 104
#: Bytes one read takes at most: the largest coalesced buffer (64 KiB) and a datagram of the
#: largest size alike.
GRO_BUFFER: Final = 0x10000
_CMSG_SPACE: Final = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0
_SIZE = struct.Struct("=i")
#: The socket receive buffer asked for (the kernel caps it at ``net.core.rmem_max``, 208 KiB
#: by default, and doubles it for its bookkeeping).  A TOU peer that scales its window may
#: have 256 KiB of segments in flight, about 190 datagrams; the default buffer (208 KiB of
#: bookkeeping, about 2.3 KiB per datagram) drops what a burst brings beyond 90.
SOCKET_RECEIVE_BUFFER: Final = 1 << 20
#: Errors that end one read pass (nothing more to read now), as for Twisted's port.
_READ_AGAIN: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS})
#: A connected port's peer refused: reported to the protocol, as Twisted does.
_REFUSED: Final = frozenset({errno.ECONNREFUSED})


class BatchUdpPort(udp.Port):
    """`twisted.internet.udp.Port` with coalesced reads where the kernel offers them."""

    log = Logger()
    #: Whether this socket's reads may hold several datagrams (set once bound).
    gro = False
    #: Reads made, and the datagrams they carried (for benches and tests).
    reads = 0
    datagrams = 0

    def _bindSocket(self) -> None:
        super()._bindSocket()
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_RECEIVE_BUFFER)
        except OSError as e:
            self.log.info("receive buffer left at the default ({e})", e=str(e))
        if not sys.platform.startswith("linux") or not _CMSG_SPACE:
            return
        try:
            self.socket.setsockopt(_SOL_UDP, _UDP_GRO, 1)
        except OSError as e:
            self.log.info("no UDP receive offload here ({e}): one read per datagram", e=str(e))
            return
        self.gro = True

    def doRead(self) -> None:
        if not self.gro:
            super().doRead()
            return
        batch = getattr(self.protocol, "datagramsReceived", None)
        read = 0
        while read < self.maxThroughput:
            try:
                data, ancdata, _flags, addr = self.socket.recvmsg(GRO_BUFFER, _CMSG_SPACE)
            except OSError as e:
                if e.errno in _READ_AGAIN:
                    return
                if e.errno in _REFUSED:
                    if self._connectedAddr:
                        self.protocol.connectionRefused()
                    return
                raise
            read += len(data)
            self.reads += 1
            size = 0
            for level, kind, value in ancdata:
                if level == _SOL_UDP and kind == _UDP_GRO and len(value) >= _SIZE.size:
                    size = _SIZE.unpack_from(value)[0]
            if 0 < size < len(data):
                datagrams = [data[i:i + size] for i in range(0, len(data), size)]
            else:
                datagrams = [data]
            self.datagrams += len(datagrams)
            peer = (addr[0], addr[1])
            try:
                if batch is not None:
                    batch(datagrams, peer)
                else:
                    for datagram in datagrams:
                        self.protocol.datagramReceived(datagram, peer)
            except BaseException:
                self.log.failure("datagram handler failed")


def listen_udp(reactor: Any, port: int, protocol: AbstractDatagramProtocol, *,
               interface: str = "") -> BatchUdpPort:
    """``reactor.listenUDP(port, protocol, interface)`` with a `BatchUdpPort`."""
    listening = BatchUdpPort(port, protocol, interface, reactor=reactor)
    listening.startListening()
    return listening
