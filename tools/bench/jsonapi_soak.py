# -*- test-case-name: tests.test_jsonapi_events -*-
"""Soak the JSON API: many event streams open for a long time while chat, mail, downloads
and hashing run, and see that the node neither stops nor grows.

Run ``python3 -m tools.bench.jsonapi_soak`` (``--minutes 10 --streams 20`` by default).  Two
nodes run in this process on one epoll reactor over real TLS/TCP; bob's API has
``--streams`` event streams open (JsonApiClient) the whole time.  Each node makes a GXS
identity through its API, alice opens a chat lobby and bob joins it.  Every second alice
chats to bob and to the lobby through her API; every 5 s she mails him; every 15 s she adds
a new file to her shared folder (hashed, list re-synced) and bob downloads it through his
API, while web-interface-like pollers ask FileDownloads (bob) and FileUploads (alice) every
second.

Printed every minute and at the end: events delivered per stream (min/max), API calls made,
the process's resident memory and open file descriptors, the server's open streams and
connections; the end ratio of memory (last minute / first minute) shows growth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.epollreactor import EPollReactor

__all__ = ["main", "run", "GXS_SYNC_PERIOD"]

#: The nodes' identity sync period (s): short, so the identities cross before the soak.
GXS_SYNC_PERIOD = 5.0


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _until(reactor: Any, predicate: Any, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise RuntimeError("timed out")


async def run(reactor: Any, workdir: Path, minutes: float, streams: int,
              out: Any = sys.stdout) -> dict[str, Any]:
    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from services.chat.lobby import LobbyMessage
    from services.jsonapi import ApiCredentials, JsonApiClient, JsonApiService
    from services.node.node import FRIENDS_FILE, Node

    nodes, apis, clients = {}, {}, {}
    for name in ("alice", "bob"):
        account = Account.create(workdir / name, name, f"{name}-loc", "soak-password",
                                 bits=2048)
        friends = FriendList(workdir / name / FRIENDS_FILE, now=reactor.seconds)
        node = nodes[name] = Node(reactor, account, friends, port=0, owns_friends=True,
                                  gxs_sync_period=GXS_SYNC_PERIOD)
        await node.startService()
        creds = ApiCredentials.create(workdir / name, name)
        api = apis[name] = JsonApiService(reactor, node, creds, port=0)
        api.startService()
        clients[name] = JsonApiClient(reactor, "127.0.0.1", api.ctx.port, creds.user,
                                      creds.password)
    a, b = nodes["alice"], nodes["bob"]
    ca, cb = clients["alice"], clients["bob"]
    await cb.call("/rsPeers/acceptInvite", {"invite": a.account.certificate_text(
        local_addr=a.listening)})
    await ca.call("/rsPeers/acceptInvite", {"invite": b.account.certificate_text(
        local_addr=b.listening)})
    await _until(reactor, lambda: bool(a.control.enabled(b.ssl_id)), 30)
    share = workdir / "alice-share"
    share.mkdir()
    await ca.call("/rsFiles/addSharedDirectory", {"dir": {
        "filename": str(share), "virtualname": "soak", "shareflags": 3200}})

    aid = (await ca.call("/rsIdentity/createIdentity", {"name": "alice soak",
                                                         "pseudonimous": False}))["id"]
    bid = (await cb.call("/rsIdentity/createIdentity", {"name": "bob soak"}))["id"]
    await _until(reactor, lambda: len(a.identities.identities()) == 2
                 and len(b.identities.identities()) == 2, 60)
    lobby = (await ca.call("/rsChats/createChatLobby", {
        "lobby_name": "soak", "lobby_identity": aid, "lobby_topic": "",
        "invited_friends": [b.ssl_id.to_hex()], "lobby_privacy_type": 4}))["retval"]
    await _until(reactor, lambda: lobby["xint64"] in b.chat.lobby.core.invites, 30)
    await cb.call("/rsChats/acceptLobbyInvite", {"id": lobby, "identity": bid})
    lobby_cid = {"type": 3, "lobby_id": lobby}
    lobby_received = [0]
    b.subscribe(LobbyMessage, lambda _: lobby_received.__setitem__(0, lobby_received[0] + 1))

    counts = [0] * streams
    opened = [cb.events(0) for _ in range(streams)]

    async def pump(i: int) -> None:
        try:
            async for _ in opened[i]:
                counts[i] += 1
        except Exception:  # noqa: BLE001 - ends when the nodes stop
            return

    pumps = [defer.ensureDeferred(pump(i)) for i in range(streams)]
    for s in opened:
        await s.ready
    calls = {"n": 0, "errors": 0}
    cid = {"broadcast_status_peer_id": "0" * 32, "type": 1, "peer_id": b.ssl_id.to_hex(),
           "distant_chat_id": "0" * 32, "lobby_id": 0}

    async def call(client: Any, path: str, body: dict[str, Any]) -> Any:
        calls["n"] += 1
        try:
            return await client.call(path, body)
        except Exception:  # noqa: BLE001 - counted, the soak goes on
            calls["errors"] += 1
            return None

    start = time.monotonic()
    end = start + minutes * 60
    tick = 0
    samples: list[tuple[float, int, int]] = []
    files = 0
    while time.monotonic() < end:
        tick += 1
        await call(ca, "/rsChats/sendChat", {"id": cid, "msg": f"soak {tick}"})
        await call(ca, "/rsChats/sendChat", {"id": lobby_cid, "msg": f"lobby soak {tick}"})
        await call(cb, "/rsFiles/FileDownloads", {})
        await call(ca, "/rsFiles/FileUploads", {})
        if tick % 5 == 0:
            await call(ca, "/rsMail/MessageSend", {"info": {"title": f"soak {tick}",
                       "msg": "x" * 200, "destinations": [{"_type": 1, "_mode": 1,
                                                            "_addr_string":
                                                                b.ssl_id.to_hex()}]}})
        if tick % 15 == 0:
            files += 1
            path = share / f"file{files}.bin"
            path.write_bytes(os.urandom(200_000))
            old = time.time() - 3600
            os.utime(path, (old, old))
            await call(ca, "/rsFiles/ForceDirectoryCheck", {})
            await task.deferLater(reactor, 0.5, lambda: None)
            f = next((x for x in a.sharing.index.files() if x.name == path.name), None)
            if f is not None:
                await call(cb, "/rsFiles/FileRequest", {
                    "fileName": f.name, "hash": f.hash.to_hex(), "size": f.size,
                    "srcIds": [a.ssl_id.to_hex()]})
        if tick % 60 == 0:
            samples.append((time.monotonic() - start, _rss(), _fds()))
            out.write(f"{(time.monotonic() - start) / 60:5.1f} min: events/stream "
                      f"{min(counts)}..{max(counts)}, calls {calls['n']} "
                      f"({calls['errors']} failed), rss {_rss() >> 20} MiB, fds {_fds()}, "
                      f"streams {len(apis['bob'].streams.streams)}, "
                      f"connections {apis['bob'].site.open_connections}\n")
            out.flush()
        await task.deferLater(reactor, 1.0, lambda: None)
    alive = await ca.call("/rsJsonApi/version", {})
    downloads = await cb.call("/rsFiles/FileDownloads", {})
    for s in opened:
        s.close()
    for api in apis.values():
        await api.stopService()
    for node in nodes.values():
        await node.stopService()
    await defer.DeferredList(pumps)
    first = samples[0][1] if samples else _rss()
    last = samples[-1][1] if samples else _rss()
    return {"events_min": min(counts), "events_max": max(counts), "calls": calls["n"],
            "failed_calls": calls["errors"], "downloads": len(downloads["hashs"]),
            "files": files, "lobby_messages": tick, "lobby_received": lobby_received[0],
            "rss_first_mib": first >> 20, "rss_last_mib": last >> 20,
            "rss_growth_ratio": last / first, "alive": alive["human"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=20)
    args = parser.parse_args(argv)
    reactor = EPollReactor()
    result: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="rsproto-soak-") as tmp:
        def go() -> None:
            d = defer.ensureDeferred(run(reactor, Path(tmp), args.minutes, args.streams))
            d.addBoth(result.append)
            d.addBoth(lambda _: reactor.stop())
        reactor.callWhenRunning(go)
        reactor.run(installSignalHandlers=False)
    outcome = result[0]
    if not isinstance(outcome, dict):
        outcome.printTraceback()
        return 1
    for key, value in outcome.items():
        print(f"{key}: {value if not isinstance(value, float) else round(value, 3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
