"""pqi: RetroShare's wire layer and everything that moves items between two friends.

Items (`PQItem` and one class per (service, subtype)), their `construct` schemas, TLVs, the
`PQIStreamer` that frames them over a byte stream, and the error family every decoder raises.
Importing `pqi` registers every item class, so `decode` knows them all.
"""

from . import items as _items  # noqa: F401  (registers the item classes)
from .errors import (DecodeError, EncodeError, FramingError, InvalidValueError,
                     LimitExceededError, QueueFullError, TrailingBytesError, TruncatedError)
from .fields import (GxsId, GxsMessageId, PgpFingerprint, PgpId, Sha1Hash, Sha256Hash, SslId)
from .framing import Deframer, Enframer, ItemReceived, ProbeReceived
from .item import PQItem, UnknownItem, decode, encode, item_class, parse_header, registered
from .streamer import PQIStreamer
from .tlvvalues import AddressInfo, FileData, FileItem, FileSet, KeySignature, NetAddress

__all__ = [
    "PQItem", "UnknownItem", "encode", "decode", "parse_header", "registered", "item_class",
    "DecodeError", "TruncatedError", "LimitExceededError", "InvalidValueError",
    "TrailingBytesError", "FramingError", "EncodeError", "QueueFullError",
    "SslId", "PgpId", "PgpFingerprint", "Sha1Hash", "Sha256Hash", "GxsId", "GxsMessageId",
    "FileItem", "FileSet", "FileData", "NetAddress", "AddressInfo", "KeySignature",
    "Deframer", "Enframer", "ItemReceived", "ProbeReceived", "PQIStreamer",
]
