# -*- test-case-name: tests.test_tlsbatch -*-
"""Twisted's memory-BIO TLS, moving many records per call instead of one.

`twisted.protocols.tls.TLSMemoryBIOProtocol` hands OpenSSL at most 16 KiB per ``SSL_write``
and reads the outgoing memory BIO once per record, and on the way in it hands the
application one record (at most 16 KiB) per ``dataReceived``.  A GiB is some 65,000 records,
so a bulk transfer pays the Python cost of a record's round through Twisted, pyOpenSSL and
the application's framing 65,000 times on each side: the largest cost left on a link once
the payload itself is sliced large (docs/transfer.md, docs/benchmarks.md).

`BatchingTLSProtocol` keeps Twisted's handshake, shutdown, producer and error handling and
changes only how bytes move:

- a write goes to OpenSSL in pieces of up to `MAX_SSL_WRITE` bytes, and OpenSSL cuts each into
  records itself: `take_whole_writes` turns off the partial-write mode pyOpenSSL sets on every
  context, under which ``SSL_write`` returns after each record (a memory BIO never refuses a
  write, so the mode buys nothing here); everything OpenSSL then holds for the wire leaves in
  one transport write;
- everything a socket read decrypts to is handed to the application in one ``dataReceived``
  (at most `MAX_DELIVERY` bytes at a time), after every record in the receive BIO is read.
  The records are decrypted straight into one buffer, side by side, with ``SSL_read`` called
  on it through the OpenSSL binding pyOpenSSL itself uses: pyOpenSSL's ``recv`` would allocate
  a buffer and copy its bytes out for every 16 KiB record, and the records would then be
  joined, two copies of every byte and some microseconds of Python per record.  An
  application whose ``accepts_views`` is true (the item streamer) gets that buffer itself as a
  read-only memoryview, never reused, for keeps; any other gets a ``bytes`` copy;
- the outgoing BIO is read into one buffer per thread (the reactor's: every link shares it,
  as nothing in it outlives the call), not into a fresh one per read, and sent from there at
  once when the TCP transport has nothing waiting: Twisted's ``write`` would copy the records
  into a bytes object, then into its send buffer, and send them only on the reactor's next
  turn (after whatever else the current turn does: a chat message sent early in a long turn
  would wait for all of it).  The TCP transport may sit below wrappers that pass writes
  through unchanged (a node's links have one, `pqi.link.netinterface`); the socket is looked
  up through them.  Whatever the socket does not take (or any error) goes through
  ``transport.write`` as before, so Twisted still sees every failure, orders every byte and
  pauses its producer.

The records on the wire are the ones OpenSSL makes either way; a peer cannot tell the
difference.  The order of events is kept: received data is delivered before a close alert or
a TLS error is acted on, as Twisted does record by record.
"""

from __future__ import annotations

import socket
import threading
from typing import Final

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL.SSL import Connection, Context, Error, WantReadError, ZeroReturnError
from twisted.internet import tcp
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure

__all__ = [
    "BatchingTLSFactory",
    "BatchingTLSProtocol",
    "MAX_DELIVERY",
    "MAX_WRAPPERS",
    "MAX_SSL_WRITE",
    "RECORD_READ_SIZE",
    "SEND_BIO_READ_SIZE",
    "take_whole_writes",
]

#: OpenSSL's ``SSL_MODE_ENABLE_PARTIAL_WRITE`` (pyOpenSSL names no constant for it).
_MODE_ENABLE_PARTIAL_WRITE: Final = 0x00000001
#: Largest piece of application data given to one ``SSL_write``.
MAX_SSL_WRITE: Final = 256 * 1024
#: Bytes asked of the outgoing memory BIO per read (a 256 KiB write becomes about 256.4 KiB).
SEND_BIO_READ_SIZE: Final = 512 * 1024
#: Bytes of room left for one ``SSL_read``; a TLS record carries at most 16 KiB.
RECORD_READ_SIZE: Final = 32 * 1024
#: Most decrypted bytes gathered before they are handed to the application.
MAX_DELIVERY: Final = 1024 * 1024
#: Most pass-through wrappers looked through for the TCP transport below a TLS protocol.
MAX_WRAPPERS: Final = 4


_ffi = Binding.ffi
_lib = Binding.lib
#: Buffers OpenSSL writes into whole, so they need not be zeroed first.
_uncleared = _ffi.new_allocator(should_clear_after_alloc=False)
#: Each thread's buffer for reading outgoing BIOs (``send``), made on first use.
_buffers = threading.local()


def take_whole_writes(context: Context) -> None:
    """Let one ``SSL_write`` on ``context``'s connections write all its records, not one."""
    context.clear_mode(_MODE_ENABLE_PARTIAL_WRITE)


def _tcp_below(transport: object) -> object | None:
    """The TCP transport ``transport`` is, or sits on through wrappers that keep
    `ProtocolWrapper`'s own ``write`` and ``writeSequence`` (they hand every byte down
    unchanged, so a byte sent to the socket directly is a byte they would have passed on);
    None if a wrapper does anything else with writes, or there is no TCP transport."""
    for _ in range(MAX_WRAPPERS + 1):
        kind = type(transport)
        if kind in _TCP_TRANSPORTS:
            return transport
        if not (isinstance(transport, ProtocolWrapper)
                and kind.write is ProtocolWrapper.write
                and kind.writeSequence is ProtocolWrapper.writeSequence):
            return None
        transport = transport.transport
    return None


def _idle_socket(transport: object) -> socket.socket | None:
    """The socket of the TCP transport below ``transport`` (see `_tcp_below`) when it has
    nothing buffered to send (None otherwise)."""
    transport = _tcp_below(transport)
    if (transport is not None and transport.connected  # type: ignore[attr-defined]
            and not transport.disconnecting  # type: ignore[attr-defined]
            and not transport._tempDataBuffer  # type: ignore[attr-defined]
            and len(transport.dataBuffer) == transport.offset):  # type: ignore[attr-defined]
        return transport.socket  # type: ignore[attr-defined, no-any-return]
    return None


#: Twisted's TCP transports, whose socket and send buffers `_idle_socket` looks at.
_TCP_TRANSPORTS: Final = (tcp.Server, tcp.Client)


class BatchingTLSProtocol(TLSMemoryBIOProtocol):
    """`TLSMemoryBIOProtocol` with batched record handling (see the module docstring)."""

    def _flushSendBIO(self) -> None:  # noqa: N802 (Twisted's name)
        """Send everything OpenSSL holds for the wire: straight to the socket when nothing
        waits before it, else in one transport write."""
        bio = self._tlsConnection._from_ssl
        buffer = getattr(_buffers, "send", None)
        if buffer is None:
            buffer = _buffers.send = _uncleared("char[]", SEND_BIO_READ_SIZE)
        sock = _idle_socket(self.transport)
        chunks: list[bytes] = []
        while (got := _lib.BIO_read(bio, buffer, SEND_BIO_READ_SIZE)) > 0:
            data = _ffi.buffer(buffer, got)
            if sock is not None:
                try:
                    sent = sock.send(data)
                except OSError:  # EAGAIN, or an error Twisted's own write will meet
                    sent = 0
                if sent == got:
                    continue
                sock = None
                chunks.append(data[sent:])
            else:
                chunks.append(data[:])
        if len(chunks) == 1:
            self.transport.write(chunks[0])
        elif chunks:
            self.transport.writeSequence(chunks)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        self._arrived = len(data)
        super().dataReceived(data)

    _arrived = 0

    def _flushReceiveBIO(self) -> None:  # noqa: N802 (Twisted's name)
        """Decrypt every record in the receive BIO into one buffer, then deliver it."""
        connection: Connection = self._tlsConnection
        # The records of the bytes that just arrived, and at most one record begun before
        # them, decrypt to fewer bytes than that: one buffer nearly always holds them all.
        size = min(MAX_DELIVERY, self._arrived + RECORD_READ_SIZE)
        buffer = _uncleared("char[]", size)
        filled = 0
        while not self._lostTLSConnection:
            if size - filled < RECORD_READ_SIZE // 2:
                self._deliver(buffer, filled)
                buffer, filled = _uncleared("char[]", size), 0
            got = _lib.SSL_read(connection._ssl, buffer + filled, size - filled)
            if got > 0:
                filled += got
                continue
            try:
                connection._raise_ssl_error(connection._ssl, got)
            except WantReadError:
                break
            except ZeroReturnError:
                self._deliver(buffer, filled)
                filled = 0
                self._shutdownTLS()
                self._tlsShutdownFinished(None)
            except Error:
                failure = Failure()
                self._deliver(buffer, filled)
                filled = 0
                self._tlsShutdownFinished(failure)
        self._deliver(buffer, filled)
        self._flushSendBIO()

    def _deliver(self, buffer: object, filled: int) -> None:
        """Hand ``filled`` decrypted bytes up: the buffer itself, as a read-only view, to an
        application that takes views (``accepts_views``; the buffer is never used again), a
        ``bytes`` copy to any other."""
        if filled and not self._aborted:
            data = _ffi.buffer(buffer, filled)
            if getattr(self.wrappedProtocol, "accepts_views", False):
                ProtocolWrapper.dataReceived(self, memoryview(data).toreadonly())
            else:
                ProtocolWrapper.dataReceived(self, data[:])

    def _write(self, data: bytes) -> None:
        """Give OpenSSL the data in large pieces, then flush the send BIO once."""
        if self._lostTLSConnection:
            return
        total = len(data)
        view = memoryview(data) if total > MAX_SSL_WRITE else None
        done = 0
        while done < total:
            piece = data if view is None else view[done:done + MAX_SSL_WRITE]
            try:
                sent = self._tlsConnection.send(piece)
            except WantReadError:
                self._bufferedWrite(bytes(data[done:]))
                break
            except Error:
                self._tlsShutdownFinished(Failure())
                return
            done += sent
            if view is None and done < total:
                view = memoryview(data)
        self._flushSendBIO()


class BatchingTLSFactory(TLSMemoryBIOFactory):
    """`TLSMemoryBIOFactory` whose connections are `BatchingTLSProtocol`."""

    protocol = BatchingTLSProtocol
