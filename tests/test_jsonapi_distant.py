"""RetroShare's distant chat and distant mail JSON API calls on real nodes alice - bob -
carol: the requests recorded in the second capture campaign's timeline (ids replaced by our
nodes'), answered with the recorded shapes, doing what they did there."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer

from pqi.wire.fields import GxsId
from services.distant_mail.events import DistantMailReceived
from services.gxstunnel.distant_chat import DistantChatMessage
from services.jsonapi import all_endpoints
from services.jsonapi.api import ApiContext
from services.jsonapi.encoding import Params
from tests.conftest import CAPTURES2
from tests.jsonapi_helpers import shape_diff
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120),
              pytest.mark.usefixtures("captures2")]

PATHS = ("/rsChats/initiateDistantChatConnexion", "/rsChats/sendChat",
         "/rsChats/closeDistantChatConnexion", "/rsMail/sendMail")


def _recorded() -> dict[str, list[dict]]:
    """The recorded (request, answer) pairs of the distant calls, by path."""
    out: dict[str, list[dict]] = {p: [] for p in PATHS}
    with open(CAPTURES2 / "timeline.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("action") == "api" and d.get("source") == "timeline" and \
                    d["args"]["path"] in out and (d["args"]["path"] != "/rsChats/sendChat" or
                                                  d["args"]["body"]["id"]["type"] == 2):
                out[d["args"]["path"]].append(d)
    return out


def _swap(value, ids: dict[str, str]):
    """The recorded value with the capture's ids replaced by ours."""
    text = json.dumps(value)
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


async def _call(ctx: ApiContext, path: str, body: dict):
    endpoint = next(e for e in all_endpoints() if e.path == path)
    return await defer.maybeDeferred(endpoint.handler, ctx, Params(body))


def test_recorded_distant_calls(tmp_path) -> None:
    """initiateDistantChatConnexion answers the chat id RetroShare computes; getDistantChatStatus
    reaches "can talk" (2) as recorded; sendChat with the distant chat id reaches carol;
    closeDistantChatConnexion answers true; sendMail to carol's identity answers a tracking
    id and the mail reaches carol; every answer has the recorded shape."""
    recorded = _recorded()
    assert all(recorded[p] for p in PATHS)
    seed = recorded["/rsChats/initiateDistantChatConnexion"][0]

    async def body(reactor):
        nodes = {n: make_node(reactor, tmp_path, n, gxs_sync_period=1.0)
                 for n in ("alice", "bob", "carol")}
        for n in nodes.values():
            await n.startService()
        try:
            a, b, c = nodes["alice"], nodes["bob"], nodes["carol"]
            for x, y in ((a, b), (b, c)):
                x.add_friend(cert_of(y))
                y.add_friend(cert_of(x))
            a_id = a.identities.create("alice-id").gxs_id
            c_id = c.identities.create("carol-id").gxs_id
            await wait_for(reactor, lambda: a.identities.public_key(c_id) is not None, 60)
            ids = {seed["args"]["body"]["from_pid"]: a_id.to_hex(),
                   seed["args"]["body"]["to_pid"]: c_id.to_hex(),
                   seed["result"]["pid"]: "CHAT_ID"}
            ctx = {n: ApiContext(node, reactor) for n, node in nodes.items()}
            got: list = []
            mails: list = []
            c.subscribe(DistantChatMessage, got.append)
            c.subscribe(DistantMailReceived, mails.append)
            answers = {}
            answers["init"] = await _call(ctx["alice"], seed["args"]["path"],
                                          _swap(seed["args"]["body"], ids))
            ids[seed["result"]["pid"]] = answers["init"]["pid"]
            chat_id = GxsId.from_hex(answers["init"]["pid"])
            await wait_for(reactor, lambda: a.distant.chat_status(chat_id) == 2, 30)
            answers["status"] = await _call(ctx["alice"], "/rsChats/getDistantChatStatus",
                                            {"pid": answers["init"]["pid"]})
            send = recorded["/rsChats/sendChat"][0]
            answers["send"] = await _call(ctx["alice"], send["args"]["path"],
                                          _swap(send["args"]["body"], ids))
            await wait_for(reactor, lambda: any(m.incoming for m in got), 30)
            close = recorded["/rsChats/closeDistantChatConnexion"][0]
            answers["close"] = await _call(ctx["alice"], close["args"]["path"],
                                           _swap(close["args"]["body"], ids))
            mail = recorded["/rsMail/sendMail"][-1]
            answers["mail"] = await _call(ctx["alice"], mail["args"]["path"],
                                          _swap(mail["args"]["body"], ids))
            await wait_for(reactor, lambda: bool(mails), 60)
            answers["flags"] = await _call(ctx["carol"],
                                           "/rsChats/setDistantChatPermissionFlags", {"flags": 2})
            answers["flags_back"] = await _call(ctx["carol"],
                                                "/rsChats/getDistantChatPermissionFlags", {})
            return answers, got, mails, ids, a_id, c_id
        finally:
            for n in nodes.values():
                await n.stopService()

    answers, got, mails, ids, a_id, c_id = on_fresh_reactor(body, 110)
    rec = {p: recorded[p][-1]["result"] for p in PATHS}
    assert answers["init"]["retval"] is True and answers["init"]["error_code"] == 0
    assert not shape_diff(rec["/rsChats/initiateDistantChatConnexion"], answers["init"])
    assert answers["status"]["info"]["status"] == 2
    assert answers["status"]["info"]["to_id"] == c_id.to_hex()
    assert answers["status"]["info"]["own_id"] == a_id.to_hex()
    assert answers["send"] == rec["/rsChats/sendChat"] == {"retval": True}
    assert [m.text for m in got if m.incoming] == ["Hi carol, distant chat from alice."]
    assert answers["close"] == {"retval": True}
    assert not shape_diff(rec["/rsMail/sendMail"], answers["mail"])
    assert answers["mail"]["retval"] == 1
    assert [t["mRecipientId"] for t in answers["mail"]["trackingIds"]] == [c_id.to_hex()]
    assert [m.subject for m in mails] == ["Distant mail to carol ✉"]
    assert answers["flags_back"] == {"retval": 2} and answers["flags"] == {"retval": True}
