"""The file-sharing step of ``rsnode demo`` on two real nodes: the share, the synced list,
the search, the progress lines and the verified download, in that order."""

from __future__ import annotations

import hashlib
import re
import time

import pytest

from pqi.items.ids import SERVICE_FILE_TRANSFER
from services.sharing import SharingOptions
from services.transfer.demo import DEMO_FILES, demo_file_sharing, make_demo_folder
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = pytest.mark.timeout(120)


def test_demo_folder_is_settled_and_known(tmp_path) -> None:
    """The demo's files are dated a minute back (so a share indexes them at once) and their
    SHA-1s are what the files hold."""
    digests = make_demo_folder(tmp_path)
    assert set(digests) == set(DEMO_FILES)
    for rel, digest in digests.items():
        path = tmp_path / rel
        assert path.stat().st_size == DEMO_FILES[rel]
        assert path.stat().st_mtime <= time.time() - 50
        assert hashlib.sha1(path.read_bytes()).digest() == digest


@pytest.mark.slow
@pytest.mark.integration
def test_demo_step_shares_finds_and_downloads(tmp_path) -> None:
    """Carol shares the demo folder; alice's node lists its files, finds the video by a word,
    downloads it with at least one progress line (carol's uploads are capped for the step and
    uncapped after it), and the step reports the copy verified."""
    lines: list[str] = []

    async def body(reactor):
        carol = make_node(reactor, tmp_path, "carol", file_sharing=SharingOptions())
        alice = make_node(reactor, tmp_path, "alice", file_sharing=SharingOptions())
        await carol.startService()
        await alice.startService()
        try:
            carol.add_friend(cert_of(alice))
            alice.add_friend(cert_of(carol))
            await wait_for(reactor, lambda: SERVICE_FILE_TRANSFER
                           in alice.control.enabled(carol.ssl_id), 30)
            info = await demo_file_sharing(reactor, lines.append, carol, alice, "carol",
                                           "alice", tmp_path / "carol-share")
            return info, carol.transfers.server.peer_rate
        finally:
            await carol.stopService()
            await alice.stopService()

    info, rate_after = on_fresh_reactor(body, 100)
    text = "\n".join(lines)
    order = ["carol shares the folder carol-share/ (3 files",
             "carol's share is indexed", "alice synced carol's file list: holiday.mp4",
             "finds holiday.mp4", "holiday.mp4: ", "✓ holiday.mp4 arrived"]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    assert re.search(r"holiday\.mp4: [\d.]+ MiB of 16\.0 MiB \(\d+ %\)", text)
    assert "whole-file SHA-1 verified" in text and "WRONG" not in text
    assert info.path == str(tmp_path / "alice" / "Downloads" / "holiday.mp4")
    assert rate_after == 0
