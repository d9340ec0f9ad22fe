"""transfer: the ft service (0x0017): verified multi-source downloads and uploads.

`chunkmap` (1 MiB chunks, states, strategies), `engine` (the sans-IO download engine),
`partials` (crash-safe partial files), `prefixhash` (the running SHA-1 of a partial's
finished prefix), `names` (safe file names from peers), `server` (the
upload side with rate limits) and `service` (the glue on the node).
"""

from .chunkmap import CHUNK_SIZE, ChunkMap, ChunkState, Strategy
from .engine import Download, DropReason, Phase, Progress, Tuning
from .names import UnsafeNameError, sanitise
from .partials import PartialFile, PartialStateError
from .server import MAX_FT_CHUNK, TokenBucket, UploadServer
from .service import (
    INCOMING_DIR,
    PARTIALS_DIR,
    TRANSFER_EVENTS,
    ExtraFiles,
    FileTransferService,
    TransferBadSource,
    TransferCompleted,
    TransferError,
    TransferFailed,
    TransferInfo,
    TransferProgress,
    UnknownTransferError,
)

__all__ = [
    "CHUNK_SIZE", "ChunkMap", "ChunkState", "Strategy",
    "Download", "DropReason", "Phase", "Progress", "Tuning",
    "UnsafeNameError", "sanitise",
    "PartialFile", "PartialStateError",
    "MAX_FT_CHUNK", "TokenBucket", "UploadServer",
    "INCOMING_DIR", "PARTIALS_DIR", "TRANSFER_EVENTS", "ExtraFiles", "FileTransferService",
    "TransferError", "TransferInfo", "UnknownTransferError",
    "TransferProgress", "TransferCompleted", "TransferFailed", "TransferBadSource",
]
