# -*- test-case-name: tests.test_gxs_nodes -*-
"""The reputation service (0x0219) of a node: `ReputationCore` on a `CoreDriver`.

Our own opinions are saved in a small JSON file, written atomically, so a restart keeps them.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime

from pqi.driver import CoreDriver
from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.ids import SERVICE_REPUTATION
from pqi.items.reputation import Opinion, ReputationRequestItem, ReputationUpdateItem
from pqi.wire.fields import GxsId
from services.base import Service
from services.reputation.core import ReputationCore, SendItem
from services.spec import ServiceSpec

__all__ = ["ReputationService", "REPUTATION_FILE", "SPEC"]

#: Our opinions, in the account directory.
REPUTATION_FILE: Final = "reputation.json"

#: Reputation on a node (``node.reputation``); its opinions in `REPUTATION_FILE`.
SPEC: Final = ServiceSpec(
    SERVICE_REPUTATION, "gxsreputation", attribute="reputation",
    items=(ReputationUpdateItem, ReputationRequestItem),
    build=lambda node: ReputationService(node.control, node.reactor,
                                         pathlib.Path(node.account.base_dir)))


class ReputationService(Service):
    """Opinions of identities and their exchange with friends (see `ReputationCore`)."""

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 base_dir: pathlib.Path) -> None:
        super().__init__(sender, reactor)
        self.path = pathlib.Path(base_dir) / REPUTATION_FILE
        self.core = ReputationCore()
        self.driver = CoreDriver(self.core, reactor, self._output)
        self._load()

    def stop(self) -> None:
        self.driver.stop()

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self.driver.feed(self.core.peer_connected, peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.driver.feed(self.core.peer_disconnected, peer.ssl_id)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        self.driver.feed(self.core.item_received, peer.ssl_id, item)

    def set_opinion(self, gxs_id: GxsId, opinion: Opinion) -> None:
        self.driver.feed(self.core.set_opinion, gxs_id, opinion)
        self._save()

    def hides(self, gxs_id: GxsId) -> bool:
        return self.core.hides(gxs_id)

    def _output(self, output: Any) -> None:
        if isinstance(output, SendItem):
            self.send(output.peer, output.item)

    def _save(self) -> None:
        data = {g.to_hex(): [int(e.own), e.own_ts] for g, e in self.core.entries.items()
                if e.own != Opinion.NEUTRAL or e.own_ts}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        for hexid, (opinion, ts) in data.items():
            try:
                self.core.set_opinion(GxsId.from_hex(hexid), Opinion(opinion), ts)
            except (ValueError, TypeError):
                self.log.warn("reputation file: bad entry {k}", k=hexid)
