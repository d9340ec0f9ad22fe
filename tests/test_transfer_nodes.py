"""Real nodes on 127.0.0.1 move a file over the ft service: 200 MB from one friend, 200 MB
from three friends at once, a corrupting friend detected and routed around, and a file
offered by mail."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from pqi.wire.fields import Sha1Hash
from services.transfer.service import TransferBadSource, TransferCompleted
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300), pytest.mark.slow]

BIG = 200 * 1000 * 1000


class TinyIndex:
    """A shared index of one file: ``lookup(hash) -> (path, size)``."""

    def __init__(self, path: str, file_hash: bytes, size: int) -> None:
        self.entry = (Sha1Hash(file_hash), path, size)

    def lookup(self, file_hash: bytes):
        h, path, size = self.entry
        return (path, size) if h == file_hash else None


def make_file(path, size: int, seed: int = 5) -> bytes:
    """Write ``size`` fast pseudo-random bytes; returns their SHA-1."""
    rng = random.Random(seed)
    h = hashlib.sha1()
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, 16 << 20))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.digest()


async def befriend(reactor, downloader, sources) -> None:
    for s in sources:
        downloader.add_friend(cert_of(s))
        s.add_friend(cert_of(downloader))
    await wait_for(reactor, lambda: all(0x0017 in downloader.control.enabled(s.ssl_id)
                                        for s in sources), 30)


def download_from(tmp_path, names, size, corrupt=None):
    """Start nodes ``names[0]`` (downloader) and the rest (sources serving the file, the
    ``corrupt`` one a damaged copy); download; return (path, info, bad reports, sent)."""
    src_file = tmp_path / "source.bin"
    digest = make_file(src_file, size)
    bad_file = tmp_path / "damaged.bin"
    if corrupt is not None:
        data = bytearray(src_file.read_bytes())
        for i in range(0, len(data), 1 << 20):
            data[i + 100] ^= 0x5A
        bad_file.write_bytes(data)
        del data

    async def body(reactor):
        nodes = [make_node(reactor, tmp_path, n) for n in names]
        for n in nodes:
            await n.startService()
        down, sources = nodes[0], nodes[1:]
        try:
            for s, name in zip(sources, names[1:], strict=True):
                path = bad_file if name == corrupt else src_file
                s.transfers.add_index(TinyIndex(str(path), digest, size))
            await befriend(reactor, down, sources)
            done, bad = [], []
            down.subscribe(TransferCompleted, lambda e: done.append(e.info))
            down.subscribe(TransferBadSource, lambda e: bad.append(e.peer))
            down.transfers.download(Sha1Hash(digest), size, "big file.bin")
            await wait_for(reactor, lambda: bool(done), 240, step=0.1)
            sent = {name: s.transfers.server.sent[down.ssl_id]
                    for s, name in zip(sources, names[1:], strict=True)}
            by_name = {n.ssl_id: name for n, name in zip(nodes, names, strict=True)}
            return done[0], [by_name[p] for p in bad], sent
        finally:
            for n in nodes:
                await n.stopService()

    info, bad, sent = on_fresh_reactor(body, 280)
    path = tmp_path / names[0] / "Downloads" / "big file.bin"
    assert info.path == str(path)
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(16 << 20):
            h.update(block)
    assert h.digest() == digest
    assert os.listdir(tmp_path / names[0] / "partials") == []
    return info, bad, sent


def test_200mb_from_one_friend(tmp_path) -> None:
    """200 MB from one friend over real TLS on loopback arrive complete and verified, under
    the sanitised name in the incoming folder, with the partial gone."""
    info, bad, sent = download_from(tmp_path, ["alice", "bob"], BIG)
    assert bad == [] and sent["bob"] == BIG and info.size == BIG


def test_200mb_from_three_friends_at_once(tmp_path) -> None:
    """Three friends serve one 200 MB download together: each serves part of it, nothing
    is fetched twice beyond the end game, and the file verifies."""
    info, bad, sent = download_from(tmp_path, ["alice", "bob", "carol", "dave"], BIG)
    assert bad == []
    assert all(n > 0 for n in sent.values()), sent
    assert BIG <= sum(sent.values()) <= BIG + 8 * (1 << 20)


def test_corrupting_friend_detected_and_bypassed(tmp_path) -> None:
    """One of three friends serves a damaged copy: the whole-file check fails, chunk SHA-1s
    from the good friends outvote it, the bad chunks come again from a good friend, the file
    verifies, and that friend alone is reported."""
    info, bad, sent = download_from(tmp_path, ["alice", "bob", "carol", "dave"],
                                    40 * (1 << 20) + 123, corrupt="carol")
    assert bad == ["carol"]
