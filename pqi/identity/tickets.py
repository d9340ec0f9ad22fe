# -*- test-case-name: tests.test_tls -*-
"""TLS 1.3 session tickets switched off, which pyOpenSSL cannot say.

We never resume a session (``OP_NO_TICKET``, the session cache off: every connection is
verified again), yet an OpenSSL server sends two NewSessionTicket messages after each TLS 1.3
handshake unless ``SSL_CTX_set_num_tickets(ctx, 0)`` was called (issue 14, finding 8).  The
`cryptography` wheels link OpenSSL statically, and their bindings, which pyOpenSSL uses, lack
that function; the wheel keeps it as a local symbol of its symbol table (the ELF ``.symtab``
of ``cryptography.hazmat.bindings._rust``).  `disable_tickets` finds it there by name,
relocates it by an exported symbol of the same file, checks that its companion getter reads
OpenSSL's default of 2 on the context, and sets 0.  Anything unexpected (another platform, a
stripped or different build, a getter that does not read 2) leaves the context as it was and
returns False: the tickets then sent still cannot resume a session, as the cache is off.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import struct
import sys
from typing import Any, Final

__all__ = ["disable_tickets", "OPENSSL_DEFAULT_TICKETS"]

#: Tickets an OpenSSL 1.1.1+ server sends after a TLS 1.3 handshake unless told otherwise.
OPENSSL_DEFAULT_TICKETS: Final = 2

_ANCHOR: Final = b"PyInit__rust"
_SETTER: Final = b"SSL_CTX_set_num_tickets"
_GETTER: Final = b"SSL_CTX_get_num_tickets"
_SHT_SYMTAB: Final = 2
_STT_FUNC: Final = 2
_SECTION: Final = struct.Struct("<IIQQQQIIQQ")
_SYMBOL: Final = struct.Struct("<IBBHQQ")


def _local_functions(path: str, names: tuple[bytes, ...]) -> dict[bytes, int]:
    """The link-time addresses (``st_value``, relative to the load base) of the named
    functions in the ELF64 ``.symtab`` of ``path``."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as elf:
        if elf[:6] != b"\x7fELF\x02\x01":  # 64-bit little-endian only
            return {}
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
        sections = [_SECTION.unpack_from(elf, shoff + i * shentsize) for i in range(shnum)]
        found: dict[bytes, int] = {}
        for _, kind, _, _, offset, size, link, _, _, entsize in sections:
            if kind != _SHT_SYMTAB or entsize != _SYMBOL.size or link >= len(sections):
                continue
            str_offset, str_size = sections[link][4], sections[link][5]
            strings = elf[str_offset:str_offset + str_size]
            wanted = {}
            for name in names:
                at = strings.find(b"\0" + name + b"\0")
                if at >= 0:
                    wanted[at + 1] = name
            for st_name, name in wanted.items():
                needle = struct.pack("<I", st_name)
                at = elf.find(needle, offset, offset + size)
                while at >= 0 and (at - offset) % _SYMBOL.size:  # not a record's name field
                    at = elf.find(needle, at + 1, offset + size)
                if at < 0:
                    continue
                _, info, _, shndx, value, fsize = _SYMBOL.unpack_from(elf, at)
                if info & 0xF == _STT_FUNC and shndx and value and fsize:
                    found[name] = value
        return found


@functools.cache
def _functions() -> tuple[Any, Any] | None:
    """``(set_num_tickets, get_num_tickets)`` as ctypes functions, or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        from cryptography.hazmat.bindings import _rust
        path = _rust.__file__
        offsets = _local_functions(path, (_ANCHOR, _SETTER, _GETTER))
        if set(offsets) != {_ANCHOR, _SETTER, _GETTER}:
            return None
        anchor = ctypes.cast(getattr(ctypes.CDLL(path), _ANCHOR.decode()), ctypes.c_void_p)
        if anchor.value is None:
            return None
        base = anchor.value - offsets[_ANCHOR]
    except (ImportError, OSError, ValueError, AttributeError, struct.error):
        return None
    setter = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)(
        base + offsets[_SETTER])
    getter = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p)(base + offsets[_GETTER])
    return setter, getter


def disable_tickets(context: Any) -> bool:
    """Make the pyOpenSSL ``context`` send no TLS 1.3 session ticket; whether it could."""
    functions = _functions()
    if functions is None:
        return False
    setter, getter = functions
    from OpenSSL._util import ffi
    pointer = int(ffi.cast("uintptr_t", context._context))  # noqa: SLF001
    count = getter(pointer)
    if count == 0:
        return True
    if count != OPENSSL_DEFAULT_TICKETS:
        return False
    return bool(setter(pointer, 0)) and getter(pointer) == 0
