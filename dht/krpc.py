# -*- test-case-name: tests.test_dht_krpc -*-
"""KRPC, the BitTorrent mainline DHT message format (BEP 5), as RetroShare's BitDHT speaks it.

A KRPC message is one bencoded dictionary per UDP datagram.  Decoding is done in two steps so that
nothing a peer sends can make us allocate or recurse without bound:

1. `_canonicalise` walks the raw bytes once, counting tokens (at most `MAX_BENCODE_TOKENS`) and
   nesting (at most `MAX_BENCODE_DEPTH`), and re-emits dictionaries with their keys in sorted
   order.  BitDHT writes keys in insertion order (``a``, ``q``, ``t``, ``y``, ``v``), which a strict
   bencode decoder rejects; sorting the raw key/value spans keeps every byte the peer sent.
2. ``fastbencode.bdecode`` turns the bounded, canonical bytes into Python values, and the
   ``_parse_*`` functions check every field's type, length and range.

Anything wrong raises `KRPCDecodeError` (a `pqi.wire.errors.DecodeError`), and nothing else.
We always *encode* canonical (sorted) bencode, which BitDHT and libtorrent both accept.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import fastbencode

from pqi.wire.errors import DecodeError, EncodeError

__all__ = [
    "KRPCDecodeError", "KRPCLimitError",
    "MAX_DATAGRAM_SIZE", "MAX_BENCODE_DEPTH", "MAX_BENCODE_TOKENS", "NODE_ID_LEN",
    "MAX_TRANSACTION_ID_LEN", "MAX_TOKEN_LEN", "MAX_VERSION_LEN", "RS_VERSION",
    "COMPACT_NODE4_LEN", "COMPACT_NODE6_LEN", "COMPACT_PEER4_LEN", "COMPACT_PEER6_LEN",
    "ERROR_GENERIC", "ERROR_SERVER", "ERROR_PROTOCOL", "ERROR_METHOD_UNKNOWN",
    "CONNECT_REQUEST", "CONNECT_REPLY", "CONNECT_START", "CONNECT_ACK",
    "CONNECT_MODE_DIRECT", "CONNECT_MODE_PROXY", "CONNECT_MODE_RELAY",
    "Address", "NodeInfo", "Ping", "FindNode", "GetPeers", "AnnouncePeer", "Connect",
    "UnknownQuery", "Query", "Response", "Error", "Message",
    "encode", "decode", "is_query", "encode_compact_nodes", "decode_compact_nodes",
    "encode_compact_peer", "decode_compact_peer",
]

#: Largest datagram we read or write (BitDHT's ``BITDHT_MAX_PKTSIZE``).
MAX_DATAGRAM_SIZE: Final = 1024
#: Deepest list/dict nesting accepted.  KRPC needs 3 (message > arguments > values list).
MAX_BENCODE_DEPTH: Final = 10
#: Most bencode values (ints, strings, lists, dicts) in one datagram.
MAX_BENCODE_TOKENS: Final = 500
#: Length of a node id or info hash.
NODE_ID_LEN: Final = 20
#: BitDHT keeps transaction ids, tokens and versions in a 20-byte ``bdToken``.
MAX_TRANSACTION_ID_LEN: Final = 20
MAX_TOKEN_LEN: Final = 20
MAX_VERSION_LEN: Final = 20
#: ``v`` of RetroShare's BitDHT: "BD02" (BitDHT version) + "RS51" (application).
RS_VERSION: Final = b"BD02RS51"

COMPACT_PEER4_LEN: Final = 6
COMPACT_PEER6_LEN: Final = 18
COMPACT_NODE4_LEN: Final = NODE_ID_LEN + COMPACT_PEER4_LEN
COMPACT_NODE6_LEN: Final = NODE_ID_LEN + COMPACT_PEER6_LEN

# BEP 5 error codes.
ERROR_GENERIC: Final = 201
ERROR_SERVER: Final = 202
ERROR_PROTOCOL: Final = 203
ERROR_METHOD_UNKNOWN: Final = 204

# BitDHT ``connect`` extension (bdmsgs.h, bdiface.h).
CONNECT_REQUEST: Final = 101
CONNECT_REPLY: Final = 102
CONNECT_START: Final = 103
CONNECT_ACK: Final = 104
CONNECT_MODE_DIRECT: Final = 0x1
CONNECT_MODE_PROXY: Final = 0x2
CONNECT_MODE_RELAY: Final = 0x4
_CONNECT_TYPES: Final = frozenset({CONNECT_REQUEST, CONNECT_REPLY, CONNECT_START, CONNECT_ACK})
_CONNECT_MODES: Final = frozenset({CONNECT_MODE_DIRECT, CONNECT_MODE_PROXY, CONNECT_MODE_RELAY})
_U32_MAX: Final = 0xFFFF_FFFF
#: Longest decimal integer we let through to the decoder (a u64 has 20 digits, plus a sign).
_MAX_INT_CHARS: Final = 21
#: Longest string-length prefix: 4 digits cover any string inside a 1024-byte datagram.
_MAX_LEN_DIGITS: Final = 4

#: (host, port): host is a textual IPv4 or IPv6 address.
Address: TypeAlias = tuple[str, int]


class KRPCDecodeError(DecodeError):
    """A datagram is not a well-formed KRPC message we accept; it is dropped and counted."""


class KRPCLimitError(KRPCDecodeError):
    """A datagram is over a named size, depth or token limit; checked before decoding it."""

    def __init__(self, limit: str, value: int, maximum: int, *, offset: int | None = None) -> None:
        super().__init__(f"{limit} exceeded: {value} > {maximum}", field=limit, offset=offset)
        self.limit = limit
        self.value = value
        self.maximum = maximum


# --- the bounded pre-scanner -----------------------------------------------------------------

class _Scanner:
    """One pass over bencode bytes: bounds depth and token count, sorts dictionary keys."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.tokens = 0

    def _count(self, pos: int) -> None:
        self.tokens += 1
        if self.tokens > MAX_BENCODE_TOKENS:
            raise KRPCLimitError("MAX_BENCODE_TOKENS", self.tokens, MAX_BENCODE_TOKENS,
                                 offset=pos)

    def _string(self, pos: int) -> tuple[int, bytes, bytes]:
        """Return (end, raw span, string value) of the string at ``pos``."""
        data = self.data
        colon = data.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
        if colon < 0:
            raise KRPCDecodeError("bad string length", offset=pos)
        digits = data[pos:colon]
        if not digits.isdigit() or (len(digits) > 1 and digits[0] == 0x30):
            raise KRPCDecodeError("bad string length", offset=pos)
        end = colon + 1 + int(digits)
        if end > len(data):
            raise KRPCDecodeError("string runs past the datagram", offset=pos)
        return end, data[pos:end], data[colon + 1:end]

    def value(self, pos: int, depth: int) -> tuple[int, bytes]:
        """Return (end, canonical bytes) of the value starting at ``pos``."""
        data = self.data
        if pos >= len(data):
            raise KRPCDecodeError("truncated bencode", offset=pos)
        self._count(pos)
        lead = data[pos]
        if lead == 0x69:  # i
            end = data.find(b"e", pos + 1, pos + 2 + _MAX_INT_CHARS)
            if end < 0:
                raise KRPCDecodeError("bad integer", offset=pos)
            return end + 1, data[pos:end + 1]
        if 0x30 <= lead <= 0x39:
            end, raw, _ = self._string(pos)
            return end, raw
        if lead not in (0x6C, 0x64):  # l, d
            raise KRPCDecodeError(f"bad bencode type byte 0x{lead:02x}", offset=pos)
        if depth + 1 > MAX_BENCODE_DEPTH:
            raise KRPCLimitError("MAX_BENCODE_DEPTH", depth + 1, MAX_BENCODE_DEPTH, offset=pos)
        pos += 1
        if lead == 0x6C:
            parts = [b"l"]
            while pos < len(data) and data[pos] != 0x65:
                pos, part = self.value(pos, depth + 1)
                parts.append(part)
            if pos >= len(data):
                raise KRPCDecodeError("unterminated list", offset=pos)
            parts.append(b"e")
            return pos + 1, b"".join(parts)
        items: dict[bytes, bytes] = {}
        while pos < len(data) and data[pos] != 0x65:
            if not 0x30 <= data[pos] <= 0x39:
                raise KRPCDecodeError("dictionary key is not a string", offset=pos)
            self._count(pos)
            key_pos = pos
            pos, raw_key, key = self._string(pos)
            if key in items:
                raise KRPCDecodeError(f"duplicate key {key!r}", offset=key_pos)
            pos, part = self.value(pos, depth + 1)
            items[key] = raw_key + part
        if pos >= len(data):
            raise KRPCDecodeError("unterminated dictionary", offset=pos)
        return pos + 1, b"d" + b"".join(items[k] for k in sorted(items)) + b"e"


def _canonicalise(data: bytes) -> bytes:
    end, canonical = _Scanner(data).value(0, 0)
    if end != len(data):
        raise KRPCDecodeError("bytes after the message", offset=end)
    return canonical


# --- compact formats ---------------------------------------------------------------------------

def encode_compact_peer(addr: Address) -> bytes:
    """6 bytes (IPv4) or 18 bytes (IPv6): address then port, network order."""
    host, port = addr
    if not 0 <= port <= 0xFFFF:
        raise EncodeError(f"port {port} out of range")
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        raise EncodeError(f"bad IP address {host!r}") from None
    return packed + port.to_bytes(2, "big")


def decode_compact_peer(raw: bytes) -> Address:
    if len(raw) not in (COMPACT_PEER4_LEN, COMPACT_PEER6_LEN):
        raise KRPCDecodeError(f"compact peer of {len(raw)} bytes", field="values")
    port = int.from_bytes(raw[-2:], "big")
    if len(raw) == COMPACT_PEER4_LEN:
        return socket.inet_ntop(socket.AF_INET, raw[:4]), port
    return str(ipaddress.IPv6Address(raw[:16])), port


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A DHT contact as compact node info carries it: id, host, port."""

    node_id: bytes
    host: str
    port: int

    @property
    def addr(self) -> Address:
        return (self.host, self.port)

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def compact(self) -> bytes:
        if len(self.node_id) != NODE_ID_LEN:
            raise EncodeError(f"node id of {len(self.node_id)} bytes")
        return self.node_id + encode_compact_peer(self.addr)


def encode_compact_nodes(nodes: tuple[NodeInfo, ...] | list[NodeInfo]) -> bytes:
    return b"".join(n.compact() for n in nodes)


def decode_compact_nodes(raw: bytes, *, ipv6: bool = False, key: str = "nodes",
                         ) -> tuple[NodeInfo, ...]:
    """Split a ``nodes`` (26-byte entries) or ``nodes6`` (38-byte entries) string."""
    size = COMPACT_NODE6_LEN if ipv6 else COMPACT_NODE4_LEN
    if len(raw) % size:
        raise KRPCDecodeError(f"{key} length {len(raw)} is not a multiple of {size}", field=key)
    out = []
    for off in range(0, len(raw), size):
        host, port = decode_compact_peer(raw[off + NODE_ID_LEN:off + size])
        out.append(NodeInfo(raw[off:off + NODE_ID_LEN], host, port))
    return tuple(out)


# --- messages ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ping:
    """``ping``: are you there?  Answered with a `Response` carrying only ``id``."""

    transaction_id: bytes
    sender_id: bytes
    version: bytes | None = None
    METHOD = b"ping"


@dataclass(frozen=True, slots=True)
class FindNode:
    """``find_node``: the k closest contacts you know to ``target``."""

    transaction_id: bytes
    sender_id: bytes
    target: bytes
    version: bytes | None = None
    METHOD = b"find_node"


@dataclass(frozen=True, slots=True)
class GetPeers:
    """``get_peers``: peers of ``info_hash``, or closer nodes, plus a token to announce with."""

    transaction_id: bytes
    sender_id: bytes
    info_hash: bytes
    version: bytes | None = None
    METHOD = b"get_peers"


@dataclass(frozen=True, slots=True)
class AnnouncePeer:
    """``announce_peer``: the sender serves ``info_hash`` on ``port`` (or its source port)."""

    transaction_id: bytes
    sender_id: bytes
    info_hash: bytes
    port: int
    token: bytes
    implied_port: bool = False
    version: bytes | None = None
    METHOD = b"announce_peer"


@dataclass(frozen=True, slots=True)
class Connect:
    """BitDHT's ``connect`` query (``bitdht_connect_genmsg``): connection set-up via the DHT."""

    transaction_id: bytes
    sender_id: bytes
    src: NodeInfo
    dest: NodeInfo
    mode: int
    param: int
    status: int
    type: int
    version: bytes | None = None
    METHOD = b"connect"


@dataclass(frozen=True, slots=True)
class UnknownQuery:
    """A query whose method we do not implement: BEP 5 wants error 204 back."""

    transaction_id: bytes
    sender_id: bytes
    method: bytes
    version: bytes | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """Any ``y=r`` message.  KRPC responses do not name their query: the transaction id does."""

    transaction_id: bytes
    sender_id: bytes
    #: None: no ``nodes`` key.  BitDHT classifies replies by their keys (``bdmsgs.cc``
    #: ``beMsgType``): without ``nodes`` a find_node reply reads as a pong, so we send an empty
    #: ``nodes`` rather than none.
    nodes: tuple[NodeInfo, ...] | None = None
    nodes6: tuple[NodeInfo, ...] = ()
    values: tuple[Address, ...] | None = None
    token: bytes | None = None
    version: bytes | None = None
    #: BEP 42's ``ip``: how the responder sees our address.
    ip: Address | None = None


@dataclass(frozen=True, slots=True)
class Error:
    """``y=e``: ``[code, message]``."""

    transaction_id: bytes
    code: int
    message: bytes
    version: bytes | None = None


Query: TypeAlias = Ping | FindNode | GetPeers | AnnouncePeer | Connect | UnknownQuery
Message: TypeAlias = Query | Response | Error
_QUERY_TYPES: Final = (Ping, FindNode, GetPeers, AnnouncePeer, Connect, UnknownQuery)


def _check_len(name: str, value: bytes, lo: int, hi: int) -> None:
    if not lo <= len(value) <= hi:
        raise EncodeError(f"{name} of {len(value)} bytes (allowed {lo}..{hi})")


def encode(msg: Message) -> bytes:
    """Canonical bencode of ``msg``; `EncodeError` if it is invalid or over 1024 bytes."""
    _check_len("transaction id", msg.transaction_id, 1, MAX_TRANSACTION_ID_LEN)
    top: dict[bytes, Any] = {b"t": msg.transaction_id}
    if msg.version is not None:
        _check_len("version", msg.version, 1, MAX_VERSION_LEN)
        top[b"v"] = msg.version
    if isinstance(msg, Error):
        top[b"y"] = b"e"
        top[b"e"] = [msg.code, msg.message]
    elif isinstance(msg, Response):
        _check_len("sender id", msg.sender_id, NODE_ID_LEN, NODE_ID_LEN)
        top[b"y"] = b"r"
        body: dict[bytes, Any] = {b"id": msg.sender_id}
        if msg.nodes is not None:
            body[b"nodes"] = encode_compact_nodes(msg.nodes)
        if msg.nodes6:
            body[b"nodes6"] = encode_compact_nodes(msg.nodes6)
        if msg.values is not None:
            body[b"values"] = [encode_compact_peer(a) for a in msg.values]
        if msg.token is not None:
            _check_len("token", msg.token, 1, MAX_TOKEN_LEN)
            body[b"token"] = msg.token
        if msg.ip is not None:
            top[b"ip"] = encode_compact_peer(msg.ip)
        top[b"r"] = body
    else:
        _check_len("sender id", msg.sender_id, NODE_ID_LEN, NODE_ID_LEN)
        top[b"y"] = b"q"
        args: dict[bytes, Any] = {b"id": msg.sender_id}
        if isinstance(msg, UnknownQuery):
            top[b"q"] = msg.method
        else:
            top[b"q"] = msg.METHOD
        if isinstance(msg, FindNode):
            _check_len("target", msg.target, NODE_ID_LEN, NODE_ID_LEN)
            args[b"target"] = msg.target
        elif isinstance(msg, GetPeers):
            _check_len("info hash", msg.info_hash, NODE_ID_LEN, NODE_ID_LEN)
            args[b"info_hash"] = msg.info_hash
        elif isinstance(msg, AnnouncePeer):
            _check_len("info hash", msg.info_hash, NODE_ID_LEN, NODE_ID_LEN)
            _check_len("token", msg.token, 1, MAX_TOKEN_LEN)
            if not 0 <= msg.port <= 0xFFFF or (msg.port == 0 and not msg.implied_port):
                raise EncodeError(f"port {msg.port} out of range")
            args[b"info_hash"] = msg.info_hash
            args[b"port"] = msg.port
            args[b"token"] = msg.token
            if msg.implied_port:
                args[b"implied_port"] = 1
        elif isinstance(msg, Connect):
            if msg.type not in _CONNECT_TYPES or msg.mode not in _CONNECT_MODES:
                raise EncodeError(f"connect type {msg.type} / mode {msg.mode} unknown")
            for name in ("param", "status"):
                if not 0 <= getattr(msg, name) <= _U32_MAX:
                    raise EncodeError(f"connect {name} out of range")
            if msg.src.is_ipv6 or msg.dest.is_ipv6:
                raise EncodeError("connect carries IPv4 compact nodes only")
            args.update({b"src": msg.src.compact(), b"dest": msg.dest.compact(),
                         b"mode": msg.mode, b"param": msg.param, b"status": msg.status,
                         b"type": msg.type})
        top[b"a"] = args
    out: bytes = fastbencode.bencode(top)
    if len(out) > MAX_DATAGRAM_SIZE:
        raise EncodeError(f"KRPC message of {len(out)} bytes > {MAX_DATAGRAM_SIZE}")
    return out


# --- decoding ----------------------------------------------------------------------------------

def _get(d: dict[bytes, Any], key: bytes, kind: type, where: str, *, required: bool = True,
         ) -> Any:
    value = d.get(key)
    if value is None:
        if required:
            raise KRPCDecodeError(f"missing {key.decode()}", field=f"{where}.{key.decode()}")
        return None
    if type(value) is not kind:
        raise KRPCDecodeError(f"{key.decode()} is {type(value).__name__}, not {kind.__name__}",
                              field=f"{where}.{key.decode()}")
    return value


def _get_bytes(d: dict[bytes, Any], key: bytes, where: str, lo: int, hi: int, *,
               required: bool = True) -> bytes | None:
    value = _get(d, key, bytes, where, required=required)
    if value is not None and not lo <= len(value) <= hi:
        raise KRPCDecodeError(f"{key.decode()} of {len(value)} bytes (allowed {lo}..{hi})",
                              field=f"{where}.{key.decode()}")
    return value


def _get_id(d: dict[bytes, Any], key: bytes, where: str) -> bytes:
    value = _get_bytes(d, key, where, NODE_ID_LEN, NODE_ID_LEN)
    assert value is not None
    return value


def _get_int(d: dict[bytes, Any], key: bytes, where: str, lo: int, hi: int) -> int:
    value = _get(d, key, int, where)
    if not lo <= value <= hi:
        raise KRPCDecodeError(f"{key.decode()} = {value} out of range {lo}..{hi}",
                              field=f"{where}.{key.decode()}")
    return int(value)


def _parse_query(top: dict[bytes, Any], tid: bytes, version: bytes | None) -> Query:
    method = _get_bytes(top, b"q", "", 1, 64)
    args = _get(top, b"a", dict, "")
    sender = _get_id(args, b"id", "a")
    if method == b"ping":
        return Ping(tid, sender, version)
    if method == b"find_node":
        return FindNode(tid, sender, _get_id(args, b"target", "a"), version)
    if method == b"get_peers":
        return GetPeers(tid, sender, _get_id(args, b"info_hash", "a"), version)
    if method == b"announce_peer":
        implied = args.get(b"implied_port", 0)
        if type(implied) is not int or implied not in (0, 1):
            raise KRPCDecodeError("implied_port is not 0 or 1", field="a.implied_port")
        port = _get_int(args, b"port", "a", 0 if implied else 1, 0xFFFF)
        token = _get_bytes(args, b"token", "a", 1, MAX_TOKEN_LEN)
        assert token is not None
        return AnnouncePeer(tid, sender, _get_id(args, b"info_hash", "a"), port, token,
                            bool(implied), version)
    if method == b"connect":
        src_raw = _get_bytes(args, b"src", "a", COMPACT_NODE4_LEN, COMPACT_NODE4_LEN)
        dest_raw = _get_bytes(args, b"dest", "a", COMPACT_NODE4_LEN, COMPACT_NODE4_LEN)
        assert src_raw is not None and dest_raw is not None
        ctype = _get_int(args, b"type", "a", 0, _U32_MAX)
        mode = _get_int(args, b"mode", "a", 0, _U32_MAX)
        if ctype not in _CONNECT_TYPES:
            raise KRPCDecodeError(f"connect type {ctype} unknown", field="a.type")
        if mode not in _CONNECT_MODES:
            raise KRPCDecodeError(f"connect mode {mode} unknown", field="a.mode")
        return Connect(tid, sender, decode_compact_nodes(src_raw, key="src")[0],
                       decode_compact_nodes(dest_raw, key="dest")[0], mode,
                       _get_int(args, b"param", "a", 0, _U32_MAX),
                       _get_int(args, b"status", "a", 0, _U32_MAX), ctype, version)
    return UnknownQuery(tid, sender, method, version)


def _parse_response(top: dict[bytes, Any], tid: bytes, version: bytes | None) -> Response:
    body = _get(top, b"r", dict, "")
    sender = _get_id(body, b"id", "r")
    raw_nodes = _get(body, b"nodes", bytes, "r", required=False)
    raw_nodes6 = _get(body, b"nodes6", bytes, "r", required=False)
    raw_values = _get(body, b"values", list, "r", required=False)
    token = _get_bytes(body, b"token", "r", 1, MAX_TOKEN_LEN, required=False)
    values = None
    if raw_values is not None:
        if not all(type(v) is bytes for v in raw_values):
            raise KRPCDecodeError("values holds a non-string", field="r.values")
        values = tuple(decode_compact_peer(v) for v in raw_values)
    ip = None
    raw_ip = _get(top, b"ip", bytes, "", required=False)
    if raw_ip is not None:
        ip = decode_compact_peer(raw_ip)
    return Response(
        tid, sender,
        None if raw_nodes is None else decode_compact_nodes(raw_nodes),
        decode_compact_nodes(raw_nodes6, ipv6=True, key="nodes6") if raw_nodes6 else (),
        values, token, version, ip)


def _parse_error(top: dict[bytes, Any], tid: bytes, version: bytes | None) -> Error:
    err = _get(top, b"e", list, "")
    if len(err) != 2 or type(err[0]) is not int or type(err[1]) is not bytes:
        raise KRPCDecodeError("e is not [int, string]", field="e")
    return Error(tid, err[0], err[1], version)


def decode(data: bytes) -> Message:
    """Parse one datagram.  Raises `KRPCDecodeError` (or `KRPCLimitError`) and nothing else."""
    if len(data) > MAX_DATAGRAM_SIZE:
        raise KRPCLimitError("MAX_DATAGRAM_SIZE", len(data), MAX_DATAGRAM_SIZE)
    if not data.startswith(b"d"):
        raise KRPCDecodeError("not a bencoded dictionary", offset=0)
    canonical = _canonicalise(bytes(data))
    try:
        top = fastbencode.bdecode(canonical)
    except (ValueError, TypeError, OverflowError) as exc:
        raise KRPCDecodeError(f"bad bencode: {exc}") from None
    tid = _get_bytes(top, b"t", "", 1, MAX_TRANSACTION_ID_LEN)
    assert tid is not None
    version = _get_bytes(top, b"v", "", 1, MAX_VERSION_LEN, required=False)
    kind = _get(top, b"y", bytes, "")
    if kind == b"q":
        return _parse_query(top, tid, version)
    if kind == b"r":
        return _parse_response(top, tid, version)
    if kind == b"e":
        return _parse_error(top, tid, version)
    raise KRPCDecodeError(f"unknown message kind {kind!r}", field="y")


def is_query(msg: Message) -> bool:
    return isinstance(msg, _QUERY_TYPES)

