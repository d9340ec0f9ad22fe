"""Uploads are reported: the upload server remembers what each friend downloads from us
(bytes sent, since when) until the friend has been silent `UPLOAD_IDLE` seconds, bounded by
`MAX_UPLOADS`; ``/rsFiles/FileUploads`` and ``FileDetails`` with RS_FILE_HINTS_UPLOAD show
them, checked on two live nodes (bob downloads alice's file)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from pqi.wire.fields import Sha1Hash, SslId
from services.transfer.server import MAX_UPLOADS, UPLOAD_IDLE, UploadServer
from tests.jsonapi_helpers import start_pair
from tests.service_fakes import on_fresh_reactor, wait_for

HINT_UPLOAD = 0x20


class _Index:
    """Shared files by hash (what the upload server looks files up in)."""

    def __init__(self) -> None:
        self.files: dict[Sha1Hash, tuple[str, int]] = {}

    def add(self, path: str, data: bytes) -> Sha1Hash:
        with open(path, "wb") as f:
            f.write(data)
        h = Sha1Hash(hashlib.sha1(data).digest())
        self.files[h] = (path, len(data))
        return h

    def lookup(self, file_hash: Sha1Hash) -> tuple[str, int] | None:
        return self.files.get(file_hash)


def _server(tmp_path: Any, count: int = 1) -> tuple[UploadServer, list[Sha1Hash]]:
    index = _Index()
    server = UploadServer()
    server.indexes.append(index)
    hashes = [index.add(str(tmp_path / f"f{i}"), b"x%d" % i * 1000) for i in range(count)]
    return server, hashes


def test_an_upload_is_listed_until_its_peer_is_silent_for_upload_idle(tmp_path) -> None:
    """Data sent to a friend makes an upload (peer, file, bytes sent, first and last time);
    it is listed until UPLOAD_IDLE seconds after the friend's last data, then forgotten."""
    server, (h,) = _server(tmp_path)
    peer = SslId(b"\x01" * 16)
    size = server.indexes[0].lookup(h)[1]
    assert server.request(peer, h, size, 0, 1000)
    server.pump(100.0, lambda p: 1 << 20)
    assert server.request(peer, h, size, 1000, size - 1000)
    server.pump(102.0, lambda p: 1 << 20)
    (up,) = server.uploads(102.0 + UPLOAD_IDLE)
    assert (up.peer, up.file_hash, up.size, up.sent, up.started, up.last) == (
        peer, h, size, size, 100.0, 102.0)
    assert up.rate() == size / 2.0
    assert server.uploads(102.0 + UPLOAD_IDLE + 0.5) == []


def test_uploads_remembered_are_bounded(tmp_path) -> None:
    """More than MAX_UPLOADS (peer, file) pairs at once: the least recently active are
    forgotten first."""
    server, hashes = _server(tmp_path, 2)
    for i in range(MAX_UPLOADS + 10):
        peer = SslId(i.to_bytes(16, "big"))
        h = hashes[i % 2]
        server.request(peer, h, server.indexes[0].lookup(h)[1], 0, 10)
        server.pump(float(i) / 1000, lambda p: 1 << 20)
    listed = server.uploads(1.0)
    assert len(listed) == MAX_UPLOADS
    assert {u.peer for u in listed} == {SslId(i.to_bytes(16, "big"))
                                        for i in range(10, MAX_UPLOADS + 10)}


async def _download(reactor: Any, tmp_path: Any) -> dict[str, Any]:
    pair = await start_pair(reactor, tmp_path)
    alice, bob = pair.alice, pair.bob
    a_api, b_api = pair.client("alice"), pair.client("bob")
    try:
        before = await a_api.call("/rsFiles/FileUploads")
        data = next(f for _, f in bob.sharing.lists.trees[alice.ssl_id].walk()
                    if f.name == "small-data.bin")
        assert (await b_api.call("/rsFiles/FileRequest", {
            "fileName": data.name, "hash": data.hash.to_hex(), "size": data.size,
            "destPath": "", "flags": 0, "srcIds": [alice.ssl_id.to_hex()]}))["retval"]
        await wait_for(reactor, lambda: any(
            u.sent == data.size for u in alice.transfers.server.uploads(reactor.seconds())),
            30)
        listed = await a_api.call("/rsFiles/FileUploads")
        details = await a_api.call("/rsFiles/FileDetails", {"hash": data.hash.to_hex(),
                                                             "hintflags": HINT_UPLOAD})
        on_bob = await b_api.call("/rsFiles/FileUploads")
    finally:
        await pair.stop()
    return {"before": before, "listed": listed, "details": details, "on_bob": on_bob,
            "hash": data.hash.to_hex(), "size": data.size, "bob": bob.ssl_id.to_hex(),
            "path": pair.files["small-data.bin"]}


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_file_uploads_and_upload_details_on_live_nodes(tmp_path) -> None:
    """While bob downloads alice's file (and for UPLOAD_IDLE s after), alice's FileUploads
    lists it and FileDetails (hint UPLOAD) gives the file with bob as the peer and every
    byte sent; bob, who uploads nothing, lists nothing."""
    r = on_fresh_reactor(lambda reactor: _download(reactor, tmp_path), 200)
    assert r["before"] == {"hashs": [], "retval": True}
    assert r["listed"] == {"hashs": [r["hash"]], "retval": True}
    assert r["on_bob"] == {"hashs": [], "retval": True}
    info = r["details"]["info"]
    assert r["details"]["retval"] is True
    assert (info["hash"], info["path"], info["fname"], info["size"]["xint64"],
            info["transfered"]["xint64"]) == (r["hash"], r["path"], "small-data.bin",
                                               r["size"], r["size"])
    assert [(p["peerId"], p["transfered"]["xint64"]) for p in info["peers"]] == [
        (r["bob"], r["size"])]
