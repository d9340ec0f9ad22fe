"""Helpers of the JSON API tests: raw HTTP exchanges over real sockets, two befriended nodes
with their APIs and shared files, and a JSON shape comparison."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from services.jsonapi import ApiCredentials, JsonApiClient, JsonApiService
from services.sharing.manager import FileListUpdated
from tests.service_fakes import cert_of, make_node, wait_for


class _Raw(protocol.Protocol):
    def __init__(self, data: bytes, until: Any) -> None:
        self.data = data
        self.until = until
        self.received = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def connectionMade(self) -> None:  # noqa: N802
        self.transport.write(self.data)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += data
        if self.until is not None and self.until(self.received):
            self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        if not self.done.called:
            self.done.callback(self.received)


async def raw_http(reactor: Any, port: int, data: bytes, timeout: float = 10.0,
                   until: Any = None) -> bytes:
    """Send ``data`` to 127.0.0.1:``port``; everything received until the server closes (or
    ``until(received)`` holds, or ``timeout`` passes)."""
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    proto = _Raw(data, until)
    await connectProtocol(endpoint, proto)
    call = reactor.callLater(timeout, lambda: proto.transport.loseConnection())
    try:
        return await proto.done
    finally:
        if call.active():
            call.cancel()


def parse_response(raw: bytes) -> tuple[int | None, list[tuple[str, str]], bytes]:
    """(status, headers in order, body with chunked encoding undone) of a raw response."""
    if b"\r\n\r\n" not in raw:
        return None, [], b""
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    if any(k.lower() == "transfer-encoding" and "chunked" in v for k, v in headers):
        out = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            out += rest[:size]
            body = rest[size + 2:]
        body = out
    return status, headers, body


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def shape_diff(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Where ``actual`` differs from ``expected`` in shape: object keys and their order,
    JSON types (int, float, str, bool, list, object) and the 64-bit encoding; list items
    are compared with the first item of the other list when both have one."""
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        return type(v).__name__

    if kind(expected) != kind(actual):
        return [f"{where}: {kind(expected)} expected, {kind(actual)} found"]
    if isinstance(expected, dict):
        if list(expected) != list(actual):
            return [f"{where}: keys {list(expected)} expected, {list(actual)} found"]
        out: list[str] = []
        for k in expected:
            out += shape_diff(expected[k], actual[k], f"{where}.{k}")
        return out
    if isinstance(expected, list) and expected and actual:
        out = []
        for i, item in enumerate(actual):
            model = expected[i] if len(expected) == len(actual) else expected[0]
            out += shape_diff(model, item, f"{where}[{i}]")
        return out[:5]
    return []


@dataclasses.dataclass
class Pair:
    """Two befriended running nodes, each with its JSON API, plus a logged-out API."""

    reactor: Any
    alice: Any
    bob: Any
    apis: dict[str, JsonApiService]
    creds: dict[str, ApiCredentials]
    files: dict[str, str]
    shares: dict[str, str]

    def port(self, name: str) -> int:
        return self.apis[name].ctx.port

    def client(self, name: str) -> JsonApiClient:
        creds = self.creds.get(name, self.creds["alice"])
        return JsonApiClient(self.reactor, "127.0.0.1", self.port(name), creds.user,
                             creds.password)

    async def stop(self) -> None:
        for api in self.apis.values():
            if api.running:
                await api.stopService()
        for node in (self.alice, self.bob):
            if node.running:
                await node.stopService()


def _write(path: str, size: int, seed: bytes) -> None:
    data = (seed * (size // len(seed) + 1))[:size]
    with open(path, "wb") as f:
        f.write(data)
    old = os.stat(path).st_mtime - 3600  # older than the indexer's settle time
    os.utime(path, (old, old))


async def start_pair(reactor: Any, tmp_path: Any, *, share: bool = True,
                     keepalive: float = 15.0, **node_options: Any) -> Pair:
    """alice and bob, friends and connected, alice sharing two files (bob synced her list),
    bob sharing one; an API each and a logged-out API ("loggedout").  ``node_options`` go
    to both nodes (e.g. a short ``gxs_sync_period``)."""
    alice = make_node(reactor, tmp_path, "alice", **node_options)
    bob = make_node(reactor, tmp_path, "bob", **node_options)
    await alice.startService()
    await bob.startService()
    pair = Pair(reactor, alice, bob, {}, {}, {}, {})
    try:
        for name, node in (("alice", alice), ("bob", bob), ("loggedout", None)):
            base = node.account.base_dir if node is not None else tmp_path
            creds = ApiCredentials.create(base, name)
            api = JsonApiService(reactor, node, creds, port=0, keepalive=keepalive)
            api.startService()
            pair.apis[name], pair.creds[name] = api, creds
        alice.add_friend(cert_of(bob))
        bob.add_friend(cert_of(alice))
        await wait_for(reactor, lambda: bool(alice.control.enabled(bob.ssl_id))
                       and bool(bob.control.enabled(alice.ssl_id)), 60)
        if share:
            a_dir = os.path.join(tmp_path, "share", "alice-shared")
            b_dir = os.path.join(tmp_path, "share", "bob-shared")
            os.makedirs(a_dir)
            os.makedirs(b_dir)
            pair.files["hello-from-alice.txt"] = os.path.join(a_dir, "hello-from-alice.txt")
            _write(pair.files["hello-from-alice.txt"], 79, b"hello from alice\n")
            pair.files["small-data.bin"] = os.path.join(a_dir, "small-data.bin")
            _write(pair.files["small-data.bin"], 40000, b"\x00\x01small")
            pair.files["bob-random.bin"] = os.path.join(b_dir, "bob-random.bin")
            _write(pair.files["bob-random.bin"], 30000, b"bob")
            pair.shares = {"alice": a_dir, "bob": b_dir}
            listed = alice.next_event(FileListUpdated)
            await bob.sharing.share(b_dir, "bob-shared")
            synced = bob.next_event(FileListUpdated)
            await alice.sharing.share(a_dir, "alice-shared")
            alice.sharing.lists.refresh(bob.ssl_id)
            bob.sharing.lists.refresh(alice.ssl_id)
            await wait_for(reactor, lambda: synced.called and listed.called, 60)
            await wait_for(reactor, lambda: any(
                True for _ in bob.sharing.lists.trees[alice.ssl_id].walk()), 60)
    except BaseException:
        await pair.stop()
        raise
    return pair
