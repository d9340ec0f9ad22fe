"""pqi.wire: bytes to items and back, the lowest layer (pure functions of bytes, no I/O).

`item` (the `PQItem` base, the registry keyed by (service, subtype), `encode`/`decode`),
`fields`, `compound`, `tlv`, `tlvvalues` (the `construct` building blocks and their named
limits in `limits`), `codegen` (generated `struct` codecs for every item schema), `framing`
(the sans-IO slicer and reassembler) and `streamer` (`PQIStreamer`, framing over a byte
transport).  Every decoder here raises one `DecodeError` family (`errors`).
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "pqi.wire.errors": ("DecodeError", "EncodeError", "FramingError", "InvalidValueError",
                        "LimitExceededError", "QueueFullError", "TrailingBytesError",
                        "TruncatedError"),
    "pqi.wire.framing": ("Deframer", "Enframer", "ItemReceived", "ProbeReceived"),
    "pqi.wire.item": ("PQItem", "UnknownItem", "decode", "encode", "item_class", "parse_header"),
})
