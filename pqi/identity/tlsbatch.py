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

The records on the wire are the ones OpenSSL makes either way; a peer cannot tell the
difference.  The order of events is kept: received data is delivered before a close alert or
a TLS error is acted on, as Twisted does record by record.
"""

from __future__ import annotations

from typing import Final

from OpenSSL.SSL import Context, Error, WantReadError, ZeroReturnError
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure

__all__ = [
    "BatchingTLSFactory",
    "BatchingTLSProtocol",
    "MAX_DELIVERY",
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
#: Bytes asked of ``SSL_read`` per call; a TLS record carries at most 16 KiB.
RECORD_READ_SIZE: Final = 32 * 1024
#: Most decrypted bytes gathered before they are handed to the application.
MAX_DELIVERY: Final = 1024 * 1024


def take_whole_writes(context: Context) -> None:
    """Let one ``SSL_write`` on ``context``'s connections write all its records, not one."""
    context.clear_mode(_MODE_ENABLE_PARTIAL_WRITE)


class BatchingTLSProtocol(TLSMemoryBIOProtocol):
    """`TLSMemoryBIOProtocol` with batched record handling (see the module docstring)."""

    def _flushSendBIO(self) -> None:  # noqa: N802 (Twisted's name)
        """Send everything OpenSSL holds for the wire in one transport write."""
        connection = self._tlsConnection
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(connection.bio_read(SEND_BIO_READ_SIZE))
            except WantReadError:
                break
        if len(chunks) == 1:
            self.transport.write(chunks[0])
        elif chunks:
            self.transport.writeSequence(chunks)

    def _flushReceiveBIO(self) -> None:  # noqa: N802 (Twisted's name)
        """Read every record in the receive BIO, then deliver their data in one call."""
        pieces: list[bytes] = []
        size = 0
        while not self._lostTLSConnection:
            try:
                data = self._tlsConnection.recv(RECORD_READ_SIZE)
            except WantReadError:
                break
            except ZeroReturnError:
                self._deliver(pieces)
                pieces, size = [], 0
                self._shutdownTLS()
                self._tlsShutdownFinished(None)
            except Error:
                failure = Failure()
                self._deliver(pieces)
                pieces, size = [], 0
                self._tlsShutdownFinished(failure)
            else:
                pieces.append(data)
                size += len(data)
                if size >= MAX_DELIVERY:
                    self._deliver(pieces)
                    pieces, size = [], 0
        self._deliver(pieces)
        self._flushSendBIO()

    def _deliver(self, pieces: list[bytes]) -> None:
        if pieces and not self._aborted:
            ProtocolWrapper.dataReceived(self, pieces[0] if len(pieces) == 1
                                         else b"".join(pieces))

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
