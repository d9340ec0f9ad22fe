"""distant_mail: mail to GXS identities that are not friends, through GXS trans (0x0230).

`crypto` (encryption to an identity's key, as ``GxsSecurity``), `store` (the outbox and the
hashes of received mail), `events`, `service` (GXS trans on a node: the groups friends store
and forward, sending with presigned receipts, receiving into the node's inbox).
"""

from .crypto import SealError, open_sealed, seal
from .events import DistantMailFailed, DistantMailReceipt, DistantMailReceived
from .service import DistantMailService
from .store import DistantMailStore, Status

__all__ = ["SealError", "open_sealed", "seal", "DistantMailFailed", "DistantMailReceipt",
           "DistantMailReceived", "DistantMailService", "DistantMailStore", "Status"]
