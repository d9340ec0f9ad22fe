"""Sending a file to a friend, end to end over real nodes on 127.0.0.1: ``send_file`` offers
it in a mail, the friend's node raises ``file_offer``, ``accept_offer`` downloads it from the
sender, and the copy verifies."""

from __future__ import annotations

import hashlib
import random

import pytest

from pqi.items.ids import SERVICE_FILE_TRANSFER, SERVICE_MSG
from services.mail.service import FileOffered
from services.transfer.service import TransferCompleted
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.slow]


def test_file_sent_to_a_friend_is_offered_accepted_and_verified(tmp_path) -> None:
    """Alice sends bob a file of 3 MiB and a few bytes: bob's node raises one ``file_offer``
    naming alice and the file's name, size and SHA-1; bob accepts it, the download comes
    from alice alone, completes under the offered name in bob's incoming folder, and holds
    alice's exact bytes."""
    data = random.Random(3).randbytes(3 * (1 << 20) + 777)
    src = tmp_path / "outbox" / "Holiday photos.zip"
    src.parent.mkdir()
    src.write_bytes(data)

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice")
        b = make_node(reactor, tmp_path, "bob")
        offers, done = [], []
        b.subscribe(FileOffered, lambda e: offers.append((e.peer, e.item, e.mail_id)))
        b.subscribe(TransferCompleted, lambda e: done.append(e.info))
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: {SERVICE_MSG, SERVICE_FILE_TRANSFER}
                           <= a.control.enabled(b.ssl_id), 30)
            mail_id = a.send_file(b.ssl_id, str(src))
            await wait_for(reactor, lambda: offers, 30)
            sender, item, offer_mail = offers[0]
            info = b.accept_offer(sender, item)
            await wait_for(reactor, lambda: done, 60)
            served = a.transfers.server.sent[b.ssl_id]
            return mail_id, sender, item, offer_mail, info, done[0], served, a.ssl_id, \
                len(offers)
        finally:
            await a.stopService()
            await b.stopService()

    mail_id, sender, item, offer_mail, started, finished, served, alice, n_offers = \
        on_fresh_reactor(body, 100)
    assert isinstance(mail_id, int) and isinstance(offer_mail, int)
    assert n_offers == 1 and sender == alice
    assert (item.name, item.size, bytes(item.hash)) == (
        "Holiday photos.zip", len(data), hashlib.sha1(data).digest())
    assert started.file_hash == item.hash and started.state == "downloading"
    assert served == len(data)
    got = tmp_path / "bob" / "Downloads" / "Holiday photos.zip"
    assert finished.path == str(got) and finished.state == "complete"
    assert got.read_bytes() == data
