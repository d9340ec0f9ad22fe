"""Mail between real nodes on 127.0.0.1: delivered to an offline friend after it starts, even
when the sender restarted in between; to/cc/bcc copies each arrive once."""

from __future__ import annotations

import pytest

from pqi.items.ids import SERVICE_MSG
from services.mail.service import MailReceived
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180), pytest.mark.slow]


def test_mail_to_offline_friend_survives_sender_restart(tmp_path) -> None:
    """Alice mails bob (online) and carol (never started yet), then restarts; carol starts
    later and gets the mail once; bob got it at once and only once; alice's outbox empties."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        c = make_node(reactor, tmp_path, "carol")
        for n in (a, b, c):
            await n.startService()
        ports = {n.account.name: n.listening.port for n in (a, b, c)}
        for x in (a, b, c):
            for y in (a, b, c):
                if x is not y:
                    x.add_friend(cert_of(y))
        await c.stopService()
        await wait_for(reactor, lambda: SERVICE_MSG in a.control.enabled(b.ssl_id))
        got_b = []
        b.subscribe(MailReceived, lambda e: got_b.append(e.mail))
        mail_id = await a.send_mail(["bob"], "to you both", "<p>hello</p>", cc=[c.ssl_id])
        await wait_for(reactor, lambda: len(got_b) == 1 and a.mail.outbox() == [
            (mail_id, c.ssl_id)])
        await a.stopService()
        a2 = make_node(reactor, tmp_path, "alice", port=ports["alice"])
        await a2.startService()
        c2 = make_node(reactor, tmp_path, "carol", port=ports["carol"])
        got_c = []
        c2.subscribe(MailReceived, lambda e: got_c.append(e.mail))
        await c2.startService()
        try:
            await wait_for(reactor, lambda: len(got_c) == 1 and a2.mail.outbox() == [], 45)
            await wait_for(reactor, lambda: SERVICE_MSG in a2.control.enabled(b.ssl_id))
            return got_b, got_c, c2.inbox(), b.inbox(), a2.ssl_id, c.ssl_id
        finally:
            for n in (a2, b, c2):
                await n.stopService()

    got_b, got_c, c_inbox, b_inbox, alice, carol = on_fresh_reactor(body, 150)
    assert [(m.subject, m.text, m.sender) for m in got_c] == [("to you both", "hello", alice)]
    assert got_c[0].cc == {carol}
    assert len(c_inbox) == 1 and len(b_inbox) == 1 and len(got_b) == 1
