# -*- test-case-name: tests.test_tlv -*-
"""Network addresses as RetroShare carries them: `NetAddress` and the address TLVs.

RetroShare writes addresses with a little-endian-host quirk (see `AddressTLV`); every service
that carries an address (discovery, relays, the link manager's records) uses these.
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import struct
from typing import Any, Union

import construct as c

from pqi.wire import tlvtypes as T  # noqa: N812  (RetroShare's TLV_TYPE_ prefix, shortened)
from pqi.wire.compound import DataclassStruct, _Tuple
from pqi.wire.errors import EncodeError, InvalidValueError
from pqi.wire.fields import u32, u64
from pqi.wire.tlv import TLV, TLVList, _read_tlv, tlv_header

__all__ = ["NetAddress", "IPAddress", "AddressInfo", "AddressTLV", "AddressInfoTLV",
           "AddressSetTLV", "DEFAULT_PORT"]

#: The TCP port a node listens on unless told otherwise (the draft's; RetroShare itself picks
#: a random one when unset).  `pqi.link.netinterface` re-exports it.
DEFAULT_PORT = 7812

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclasses.dataclass(frozen=True)
class NetAddress:
    """An IP address and port as carried in ``RsTlvIpAddress``."""

    host: IPAddress
    port: int

    def __str__(self) -> str:
        if self.host.version == 6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _swap_words(raw: bytes) -> bytes:
    """Reverse each 4-byte word: what a double htonl does on a little-endian host."""
    return b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))


class _AddressTLV(c.Construct):
    """ADDRESS 0x1072: empty (unset) or an IPV4/IPV6 sub-TLV with the LE-host quirk.

    RetroShare byte-swaps values that are already in network order, so on every deployed
    (little-endian) client the IPv4 octets appear reversed and the port little-endian:
    1.2.3.4:7812 is ``04 03 02 01 84 1E``.  IPv6 has each 32-bit word reversed.
    """

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> NetAddress | None:
        _, base, data = _read_tlv(stream, path, T.ADDRESS)
        return _address_from_payload(data, path, base)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        sub = _address_payload(obj, path)
        stream.write(tlv_header(T.ADDRESS, len(sub)))
        stream.write(sub)
        return obj


def _address_from_payload(data: bytes, path: str, base: int) -> NetAddress | None:
    """The address in an ADDRESS TLV's payload ``data`` (found at offset ``base``).

    Shared by the construct and the generated fast decoders (`pqi.wire.codegen`), so both read the
    quirk the same way.
    """
    if len(data) < 6:
        return None  # empty address (or too short for a sub-TLV: RetroShare skips it)
    sub_type, sub_len = struct.unpack_from(">HI", data)
    if sub_type == T.IPV4:
        want = 6 + 4 + 2
    elif sub_type == T.IPV6:
        want = 6 + 16 + 2
    else:
        return None  # unknown address kind: skipped like RetroShare
    if sub_len != want or len(data) < want:
        raise InvalidValueError(f"address TLV 0x{sub_type:04x} has length {sub_len}, "
                                f"expected {want}", field=path, offset=base)
    raw = data[6:want - 2]
    (port,) = struct.unpack_from("<H", data, want - 2)
    host: IPAddress = (ipaddress.IPv4Address(raw[::-1]) if sub_type == T.IPV4
                       else ipaddress.IPv6Address(_swap_words(raw)))
    return NetAddress(host, port)


def _address_payload(obj: NetAddress | None, path: str) -> bytes:
    """The payload of the ADDRESS TLV for ``obj`` (empty for None): the sub-TLV, quirk applied."""
    if obj is None:
        return b""
    if not 0 <= obj.port <= 0xFFFF:
        raise EncodeError(f"{path}: port {obj.port} out of range")
    if obj.host.version == 4:
        return tlv_header(T.IPV4, 6) + obj.host.packed[::-1] + struct.pack("<H", obj.port)
    return tlv_header(T.IPV6, 18) + _swap_words(obj.host.packed) + struct.pack("<H", obj.port)


AddressTLV = _AddressTLV()


@dataclasses.dataclass(frozen=True)
class AddressInfo:
    """An address with when it was seen and who told us (``RsTlvIpAddressInfo``)."""

    addr: NetAddress | None
    seen_time: int = 0
    source: int = 0


AddressInfoTLV = TLV(T.ADDRESS_INFO, DataclassStruct(
    AddressInfo, "addr" / AddressTLV, "seen_time" / u64, "source" / u32), whole=False)

#: ADDRESS_SET 0x1071: a list of AddressInfo TLVs, decoded to a tuple.
AddressSetTLV = _Tuple(TLVList(T.ADDRESS_SET, AddressInfoTLV))
