"""The typed events of distant mail (a node's subscribers get them)."""

from __future__ import annotations

import dataclasses

from pqi.wire.fields import GxsId

__all__ = ["DistantMailReceived", "DistantMailReceipt", "DistantMailFailed"]


@dataclasses.dataclass(frozen=True)
class DistantMailReceived:
    """A distant mail from identity ``author`` to our identity ``recipient`` arrived (once);
    ``mail_id`` is its id in the node's inbox (None when the node keeps no inbox)."""

    mail_id: int | None
    author: GxsId
    recipient: GxsId
    subject: str
    body: str


@dataclasses.dataclass(frozen=True)
class DistantMailReceipt:
    """The receipt for our outgoing distant mail ``local_id`` (to ``recipient``) came back."""

    local_id: int
    recipient: GxsId


@dataclasses.dataclass(frozen=True)
class DistantMailFailed:
    """Our outgoing distant mail ``local_id`` to ``recipient`` gave up (``reason``)."""

    local_id: int
    recipient: GxsId
    reason: str
